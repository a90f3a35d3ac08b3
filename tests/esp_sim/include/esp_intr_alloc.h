/* esp_sim: interrupt allocation flags (unused on the host). */
#pragma once

#define ESP_INTR_FLAG_LEVEL1 (1u << 1)
