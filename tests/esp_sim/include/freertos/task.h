/* esp_sim: tasks are detached POSIX threads; core and priority are ignored. */
#pragma once

#include "freertos/FreeRTOS.h"

typedef void *TaskHandle_t;
typedef void (*TaskFunction_t)(void *arg);

BaseType_t xTaskCreatePinnedToCore(TaskFunction_t fn, const char *name, uint32_t stack_bytes,
                                   void *arg, UBaseType_t priority, TaskHandle_t *handle,
                                   BaseType_t core);
void vTaskDelete(TaskHandle_t task); /* NULL only: the calling task ends */
void vTaskDelay(TickType_t ticks);
