/*
 * transfer_engine: the portable half of the ESP32-P4 USB host backend.
 *   te_status   library transfer status -> Linux errno
 *   te_plan     chunking of bulk/interrupt URBs, iso packet layout
 *   te_pool     fair share of the transfer pool between devices
 *   te_topology bus ids from the hub chain, speeds, TT check
 *   te_engine   per-endpoint queues, unlink by flush, special requests
 */
#pragma once

#include "te_engine.h"
#include "te_plan.h"
#include "te_pool.h"
#include "te_status.h"
#include "te_topology.h"
