/*
 * esp_sim: the few FreeRTOS primitives the firmware glue uses, on POSIX
 * threads. Queues copy items into a ring under a mutex; a wait of
 * portMAX_DELAY waits for ever, 0 not at all, otherwise up to that many ms.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "freertos/task.h"

struct QueueDefinition {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint8_t *items;
    size_t item_size, length, head, count;
};

static struct timespec deadline_after(TickType_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000u;
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Wait until ready(q) or the wait runs out; lock held. */
static bool wait_for(QueueHandle_t q, bool (*ready)(QueueHandle_t), TickType_t wait)
{
    const struct timespec deadline = deadline_after(wait);
    while (!ready(q)) {
        if (wait == 0) {
            return false;
        }
        if (wait == portMAX_DELAY) {
            pthread_cond_wait(&q->changed, &q->lock);
        } else if (pthread_cond_timedwait(&q->changed, &q->lock, &deadline) == ETIMEDOUT) {
            return ready(q);
        }
    }
    return true;
}

static bool has_room(QueueHandle_t q) { return q->count < q->length; }
static bool has_item(QueueHandle_t q) { return q->count > 0; }

QueueHandle_t xQueueCreate(UBaseType_t length, UBaseType_t item_size)
{
    QueueHandle_t q = calloc(1, sizeof *q);
    if (!q) {
        return NULL;
    }
    q->items = calloc(length ? length : 1, item_size ? item_size : 1);
    if (!q->items) {
        free(q);
        return NULL;
    }
    q->item_size = item_size;
    q->length = length;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->changed, NULL);
    return q;
}

BaseType_t xQueueSend(QueueHandle_t q, const void *item, TickType_t wait)
{
    pthread_mutex_lock(&q->lock);
    bool ok = wait_for(q, has_room, wait);
    if (ok) {
        memcpy(q->items + ((q->head + q->count) % q->length) * q->item_size, item,
               q->item_size);
        q->count++;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
    return ok ? pdTRUE : pdFALSE;
}

BaseType_t xQueueReceive(QueueHandle_t q, void *item, TickType_t wait)
{
    pthread_mutex_lock(&q->lock);
    bool ok = wait_for(q, has_item, wait);
    if (ok) {
        memcpy(item, q->items + q->head * q->item_size, q->item_size);
        q->head = (q->head + 1) % q->length;
        q->count--;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
    return ok ? pdTRUE : pdFALSE;
}

void vQueueDelete(QueueHandle_t q)
{
    if (q) {
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->changed);
        free(q->items);
        free(q);
    }
}

SemaphoreHandle_t xSemaphoreCreateBinary(void) { return xQueueCreate(1, 1); }

BaseType_t xSemaphoreTake(SemaphoreHandle_t s, TickType_t wait)
{
    uint8_t token;
    return xQueueReceive(s, &token, wait);
}

BaseType_t xSemaphoreGive(SemaphoreHandle_t s)
{
    const uint8_t token = 1;
    return xQueueSend(s, &token, 0); /* a binary semaphore given twice stays given */
}

void vSemaphoreDelete(SemaphoreHandle_t s) { vQueueDelete(s); }

typedef struct {
    TaskFunction_t fn;
    void *arg;
} task_start_t;

static void *task_main(void *p)
{
    task_start_t start = *(task_start_t *)p;
    free(p);
    start.fn(start.arg);
    return NULL;
}

BaseType_t xTaskCreatePinnedToCore(TaskFunction_t fn, const char *name, uint32_t stack_bytes,
                                   void *arg, UBaseType_t priority, TaskHandle_t *handle,
                                   BaseType_t core)
{
    (void)name, (void)stack_bytes, (void)priority, (void)core;
    task_start_t *start = malloc(sizeof *start);
    if (!start) {
        return pdFAIL;
    }
    start->fn = fn;
    start->arg = arg;
    pthread_t thread;
    if (pthread_create(&thread, NULL, task_main, start) != 0) {
        free(start);
        return pdFAIL;
    }
    pthread_detach(thread);
    if (handle) {
        *handle = NULL;
    }
    return pdPASS;
}

void vTaskDelete(TaskHandle_t task)
{
    (void)task;
    pthread_exit(NULL);
}

void vTaskDelay(TickType_t ticks)
{
    struct timespec ts = {.tv_sec = ticks / 1000u, .tv_nsec = (long)(ticks % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}
