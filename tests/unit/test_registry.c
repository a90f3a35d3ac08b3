/*
 * Unit tests of the device registry: bus ids, devnums, exclusive import,
 * removal while imported, and what DEVLIST may list.
 */
#include <stdlib.h>
#include <string.h>

#include "device_registry.h"
#include "test_harness.h"
#include "usbip_log.h"

typedef struct {
    int gone;
    usbip_registry_entry_t *gone_entry;
    void *gone_owner;
    int freed;
    usbip_device_t *freed_dev;
} hooks_rec_t;

static void on_gone(void *ctx, usbip_registry_entry_t *entry, void *owner)
{
    hooks_rec_t *r = ctx;
    r->gone++;
    r->gone_entry = entry;
    r->gone_owner = owner;
}

static void on_freed(void *ctx, usbip_device_t *dev)
{
    hooks_rec_t *r = ctx;
    r->freed++;
    r->freed_dev = dev;
}

static void quiet_sink(void *ctx, usbip_log_level_t level, const char *tag, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)tag;
    (void)msg;
}

static void init_reg(usbip_registry_t *reg, usbip_registry_entry_t *entries, size_t n,
                     hooks_rec_t *rec)
{
    memset(rec, 0, sizeof *rec);
    const usbip_registry_hooks_t hooks = {.device_gone = on_gone, .device_freed = on_freed,
                                          .ctx = rec};
    usbip_log_set_sink(quiet_sink, NULL);
    CHECK(usbip_registry_init(reg, entries, n, &hooks) == USBIP_OK);
}

static void plain_device(usbip_device_t *dev)
{
    memset(dev, 0, sizeof *dev);
    dev->record.idVendor = 0x1234;
    dev->record.bNumInterfaces = 1;
}

TEST(busid_format_builds_linux_style_port_paths)
{
    char out[USBIP_BUSID_SIZE];
    const uint8_t p1[] = {1}, p13[] = {1, 3}, p412[] = {4, 1, 2};
    CHECK(usbip_busid_format(1, p1, 1, out) == USBIP_OK);
    CHECK_STR(out, "1-1");
    CHECK(usbip_busid_format(1, p13, 2, out) == USBIP_OK);
    CHECK_STR(out, "1-1.3");
    CHECK(usbip_busid_format(2, p412, 3, out) == USBIP_OK);
    CHECK_STR(out, "2-4.1.2");
    const uint8_t deepest[7] = {255, 255, 255, 255, 255, 255, 255};
    CHECK(usbip_busid_format(255, deepest, 7, out) == USBIP_OK);
    CHECK_STR(out, "255-255.255.255.255.255.255.255"); /* 31 characters: fits */
}

TEST(busid_format_refuses_invalid_depth_port_and_busnum)
{
    char out[USBIP_BUSID_SIZE];
    const uint8_t ports[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t zero_port[2] = {1, 0};
    CHECK(usbip_busid_format(1, ports, 0, out) == USBIP_ERR_INVALID_ARG);
    CHECK(usbip_busid_format(1, ports, 8, out) == USBIP_ERR_INVALID_ARG);
    CHECK(usbip_busid_format(1, zero_port, 2, out) == USBIP_ERR_INVALID_ARG);
    CHECK(usbip_busid_format(0, ports, 1, out) == USBIP_ERR_INVALID_ARG);
    CHECK(usbip_busid_format(256, ports, 1, out) == USBIP_ERR_INVALID_ARG);
    CHECK(usbip_busid_format(1, ports, 7, out) == USBIP_OK);
    CHECK_STR(out, "1-1.2.3.4.5.6.7");
}

TEST(init_refuses_missing_storage)
{
    usbip_registry_t reg;
    usbip_registry_entry_t entries[1];
    CHECK(usbip_registry_init(&reg, NULL, 1, NULL) == USBIP_ERR_INVALID_ARG);
    CHECK(usbip_registry_init(&reg, entries, 0, NULL) == USBIP_ERR_INVALID_ARG);
    CHECK(usbip_registry_init(NULL, entries, 1, NULL) == USBIP_ERR_INVALID_ARG);
    CHECK(usbip_registry_init(&reg, entries, 1, NULL) == USBIP_OK);
}

TEST(add_fills_busid_busnum_devnum_and_path)
{
    usbip_registry_t reg;
    usbip_registry_entry_t entries[4];
    hooks_rec_t rec;
    init_reg(&reg, entries, 4, &rec);
    usbip_device_t dev;
    plain_device(&dev);
    const uint8_t ports[] = {1, 3};
    usbip_registry_entry_t *e = NULL;
    REQUIRE(usbip_registry_add(&reg, &dev, 1, ports, 2, &e) == USBIP_OK);
    REQUIRE(e != NULL);
    CHECK_STR(dev.record.busid, "1-1.3");
    CHECK_EQ_INT(dev.record.busnum, 1);
    CHECK_EQ_INT(dev.record.devnum, 1);
    CHECK_STR(dev.record.path, "/sys/devices/platform/usbip-esp32p4/usb1/1-1.3");
    CHECK(e->used && e->exported && e->state == USBIP_DEV_AVAILABLE && e->dev == &dev);
    CHECK(e->owner == NULL);
    CHECK(usbip_registry_find(&reg, "1-1.3") == e);
    CHECK(usbip_registry_find(&reg, "1-1") == NULL);
    CHECK(usbip_registry_find(&reg, "1-1.3.1") == NULL);
    CHECK(usbip_registry_find_device(&reg, &dev) == e);
    usbip_log_set_sink(NULL, NULL);
}

TEST(devnum_is_the_lowest_free_in_1_to_255_per_bus)
{
    usbip_registry_t reg;
    usbip_registry_entry_t *entries = calloc(300, sizeof *entries);
    usbip_device_t *devs = calloc(300, sizeof *devs);
    hooks_rec_t rec;
    init_reg(&reg, entries, 300, &rec);
    usbip_registry_entry_t *e[4];
    for (int i = 0; i < 3; i++) {
        plain_device(&devs[i]);
        const uint8_t p[] = {(uint8_t)(i + 1)};
        REQUIRE(usbip_registry_add(&reg, &devs[i], 1, p, 1, &e[i]) == USBIP_OK);
        CHECK_EQ_INT(devs[i].record.devnum, i + 1);
    }
    /* another bus starts at 1 again */
    plain_device(&devs[3]);
    const uint8_t p1[] = {1};
    REQUIRE(usbip_registry_add(&reg, &devs[3], 2, p1, 1, NULL) == USBIP_OK);
    CHECK_EQ_INT(devs[3].record.devnum, 1);
    /* freeing devnum 2 makes it the next one */
    usbip_registry_remove(&reg, e[1]);
    CHECK_EQ_INT(rec.freed, 1);
    CHECK(rec.freed_dev == &devs[1]);
    plain_device(&devs[4]);
    const uint8_t p9[] = {9};
    REQUIRE(usbip_registry_add(&reg, &devs[4], 1, p9, 1, NULL) == USBIP_OK);
    CHECK_EQ_INT(devs[4].record.devnum, 2);
    /* fill bus 1 up to devnum 255; the 256th device is refused */
    int added = 3;
    for (int i = 5; i < 300 && added < 255; i++) {
        plain_device(&devs[i]);
        const uint8_t p[] = {(uint8_t)(10 + i / 200), (uint8_t)(1 + i % 200)};
        REQUIRE(usbip_registry_add(&reg, &devs[i], 1, p, 2, NULL) == USBIP_OK);
        CHECK(devs[i].record.devnum >= 1 && devs[i].record.devnum <= 255);
        added++;
    }
    CHECK_EQ_INT(added, 255);
    usbip_device_t extra;
    plain_device(&extra);
    const uint8_t px[] = {77, 77};
    CHECK(usbip_registry_add(&reg, &extra, 1, px, 2, NULL) == USBIP_ERR_NO_MEM);
    /* every devnum on bus 1 is distinct */
    uint8_t seen[256] = {0};
    for (size_t i = 0; i < 300; i++) {
        if (entries[i].used && entries[i].dev->record.busnum == 1) {
            CHECK_EQ_INT(seen[entries[i].dev->record.devnum], 0);
            seen[entries[i].dev->record.devnum] = 1;
        }
    }
    CHECK_EQ_INT(seen[0], 0);
    free(entries);
    free(devs);
    usbip_log_set_sink(NULL, NULL);
}

TEST(hubs_are_refused)
{
    usbip_registry_t reg;
    usbip_registry_entry_t entries[2];
    hooks_rec_t rec;
    init_reg(&reg, entries, 2, &rec);
    usbip_device_t hub;
    plain_device(&hub);
    hub.record.bDeviceClass = 0x09;
    const uint8_t p[] = {1};
    CHECK(usbip_registry_add(&reg, &hub, 1, p, 1, NULL) == USBIP_ERR_NOT_SUPPORTED);
    CHECK(usbip_registry_find(&reg, "1-1") == NULL);
    CHECK(usbip_registry_find_device(&reg, &hub) == NULL);
    CHECK(!entries[0].used && !entries[1].used);
    usbip_log_set_sink(NULL, NULL);
}

TEST(duplicate_busid_is_busy_and_a_full_table_is_no_mem)
{
    usbip_registry_t reg;
    usbip_registry_entry_t entries[2];
    hooks_rec_t rec;
    init_reg(&reg, entries, 2, &rec);
    usbip_device_t a, b, c;
    plain_device(&a);
    plain_device(&b);
    plain_device(&c);
    const uint8_t p1[] = {1}, p2[] = {2}, p3[] = {3};
    usbip_registry_entry_t *ea = NULL;
    REQUIRE(usbip_registry_add(&reg, &a, 1, p1, 1, &ea) == USBIP_OK);
    CHECK(usbip_registry_add(&reg, &b, 1, p1, 1, NULL) == USBIP_ERR_BUSY);
    /* also while the old one is GONE but not yet released */
    int owner;
    REQUIRE(usbip_registry_claim(&reg, ea, &owner) == USBIP_OK);
    usbip_registry_remove(&reg, ea);
    CHECK(usbip_registry_add(&reg, &b, 1, p1, 1, NULL) == USBIP_ERR_BUSY);
    CHECK(usbip_registry_add(&reg, &b, 1, p2, 1, NULL) == USBIP_OK);
    CHECK(usbip_registry_add(&reg, &c, 1, p3, 1, NULL) == USBIP_ERR_NO_MEM);
    usbip_registry_release(&reg, ea, &owner);
    CHECK(usbip_registry_add(&reg, &c, 1, p1, 1, NULL) == USBIP_OK);
    usbip_log_set_sink(NULL, NULL);
}

TEST(claim_is_exclusive_and_release_needs_the_owner)
{
    usbip_registry_t reg;
    usbip_registry_entry_t entries[2];
    hooks_rec_t rec;
    init_reg(&reg, entries, 2, &rec);
    usbip_device_t a;
    plain_device(&a);
    const uint8_t p1[] = {1};
    usbip_registry_entry_t *e = NULL;
    REQUIRE(usbip_registry_add(&reg, &a, 1, p1, 1, &e) == USBIP_OK);
    int o1, o2;
    CHECK(usbip_registry_claim(&reg, e, &o1) == USBIP_OK);
    CHECK(e->state == USBIP_DEV_IMPORTED && e->owner == &o1);
    CHECK(usbip_registry_claim(&reg, e, &o2) == USBIP_ERR_BUSY);
    CHECK(usbip_registry_claim(&reg, e, &o1) == USBIP_ERR_BUSY);
    usbip_registry_release(&reg, e, &o2); /* not the owner: ignored */
    CHECK(e->state == USBIP_DEV_IMPORTED && e->owner == &o1);
    CHECK(usbip_registry_find(&reg, "1-1") == e); /* imported is still findable */
    usbip_registry_release(&reg, e, &o1);
    CHECK(e->state == USBIP_DEV_AVAILABLE && e->owner == NULL);
    CHECK_EQ_INT(rec.freed, 0);
    CHECK(usbip_registry_claim(&reg, e, &o2) == USBIP_OK);
    usbip_registry_release(&reg, e, &o2);
    /* unexported: not importable, and hiding does not end an import */
    usbip_registry_set_exported(e, false);
    CHECK(usbip_registry_claim(&reg, e, &o1) == USBIP_ERR_NOT_FOUND);
    usbip_registry_set_exported(e, true);
    CHECK(usbip_registry_claim(&reg, e, &o1) == USBIP_OK);
    usbip_registry_set_exported(e, false);
    CHECK(e->state == USBIP_DEV_IMPORTED);
    usbip_log_set_sink(NULL, NULL);
}

TEST(remove_while_imported_marks_gone_tells_the_owner_and_release_frees)
{
    usbip_registry_t reg;
    usbip_registry_entry_t entries[2];
    hooks_rec_t rec;
    init_reg(&reg, entries, 2, &rec);
    usbip_device_t a;
    plain_device(&a);
    const uint8_t p1[] = {1};
    usbip_registry_entry_t *e = NULL;
    REQUIRE(usbip_registry_add(&reg, &a, 1, p1, 1, &e) == USBIP_OK);
    int owner;
    REQUIRE(usbip_registry_claim(&reg, e, &owner) == USBIP_OK);
    usbip_registry_remove(&reg, e);
    CHECK_EQ_INT(rec.gone, 1);
    CHECK(rec.gone_entry == e && rec.gone_owner == &owner);
    CHECK_EQ_INT(rec.freed, 0);
    CHECK(e->used && e->state == USBIP_DEV_GONE);
    CHECK(usbip_registry_find(&reg, "1-1") == NULL);
    CHECK(usbip_registry_find_device(&reg, &a) == e);
    CHECK(usbip_registry_claim(&reg, e, &owner) == USBIP_ERR_NOT_FOUND);
    usbip_registry_remove(&reg, e); /* again: nothing */
    CHECK_EQ_INT(rec.gone, 1);
    usbip_registry_release(&reg, e, &owner);
    CHECK_EQ_INT(rec.freed, 1);
    CHECK(rec.freed_dev == &a);
    CHECK(!e->used);
    CHECK(usbip_registry_find_device(&reg, &a) == NULL);
    usbip_registry_release(&reg, e, &owner); /* already free: nothing */
    CHECK_EQ_INT(rec.freed, 1);
    usbip_log_set_sink(NULL, NULL);
}

static void collect(void *arg, usbip_registry_entry_t *entry)
{
    const char **names = arg;
    while (*names) {
        names++;
    }
    *names = entry->dev->record.busid;
}

TEST(listed_devices_exclude_imported_unexported_and_gone)
{
    usbip_registry_t reg;
    usbip_registry_entry_t entries[6];
    hooks_rec_t rec;
    init_reg(&reg, entries, 6, &rec);
    usbip_device_t d[5];
    usbip_registry_entry_t *e[5];
    for (int i = 0; i < 5; i++) {
        plain_device(&d[i]);
        const uint8_t p[] = {(uint8_t)(i + 1)};
        REQUIRE(usbip_registry_add(&reg, &d[i], 1, p, 1, &e[i]) == USBIP_OK);
    }
    int o1, o2;
    REQUIRE(usbip_registry_claim(&reg, e[1], &o1) == USBIP_OK); /* imported */
    usbip_registry_set_exported(e[2], false);                    /* hidden */
    REQUIRE(usbip_registry_claim(&reg, e[3], &o2) == USBIP_OK);
    usbip_registry_remove(&reg, e[3]); /* gone */
    const char *names[6] = {0};
    CHECK_EQ_INT(usbip_registry_for_each_listed(&reg, collect, names), 2);
    CHECK_STR(names[0], "1-1");
    CHECK_STR(names[1], "1-5");
    CHECK(names[2] == NULL);
    CHECK_EQ_INT(usbip_registry_for_each_listed(&reg, NULL, NULL), 2);
    usbip_registry_release(&reg, e[1], &o1);
    CHECK_EQ_INT(usbip_registry_for_each_listed(&reg, NULL, NULL), 3);
    usbip_registry_release(&reg, e[3], &o2);
    CHECK_EQ_INT(usbip_registry_for_each_listed(&reg, NULL, NULL), 3);
    CHECK_EQ_INT(rec.freed, 1);
    usbip_log_set_sink(NULL, NULL);
}

TEST(state_names)
{
    CHECK_STR(usbip_dev_state_name(USBIP_DEV_AVAILABLE), "available");
    CHECK_STR(usbip_dev_state_name(USBIP_DEV_IMPORTED), "imported");
    CHECK_STR(usbip_dev_state_name(USBIP_DEV_GONE), "gone");
    CHECK_STR(usbip_dev_state_name((usbip_dev_state_t)9), "?");
}

TEST_MAIN("registry",
          TEST_ENTRY(busid_format_builds_linux_style_port_paths),
          TEST_ENTRY(busid_format_refuses_invalid_depth_port_and_busnum),
          TEST_ENTRY(init_refuses_missing_storage),
          TEST_ENTRY(add_fills_busid_busnum_devnum_and_path),
          TEST_ENTRY(devnum_is_the_lowest_free_in_1_to_255_per_bus),
          TEST_ENTRY(hubs_are_refused),
          TEST_ENTRY(duplicate_busid_is_busy_and_a_full_table_is_no_mem),
          TEST_ENTRY(claim_is_exclusive_and_release_needs_the_owner),
          TEST_ENTRY(remove_while_imported_marks_gone_tells_the_owner_and_release_frees),
          TEST_ENTRY(listed_devices_exclude_imported_unexported_and_gone),
          TEST_ENTRY(state_names))
