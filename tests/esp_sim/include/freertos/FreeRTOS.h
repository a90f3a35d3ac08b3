/* esp_sim: the FreeRTOS types and macros the firmware glue uses, over
 * POSIX threads (tests/esp_sim/src/freertos_posix.c). One tick = 1 ms. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef uint32_t TickType_t;
typedef int BaseType_t;
typedef unsigned int UBaseType_t;

#define portMAX_DELAY     ((TickType_t)0xffffffffu)
#define pdTRUE            1
#define pdFALSE           0
#define pdPASS            1
#define pdFAIL            0
#define pdMS_TO_TICKS(ms) ((TickType_t)(ms))
#define tskNO_AFFINITY    0x7fffffff
