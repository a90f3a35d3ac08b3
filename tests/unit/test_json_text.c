/* test_json_text: the dashboard's JSON writer and reader. */
#include <stdlib.h>
#include <string.h>

#include "json_read.h"
#include "json_write.h"
#include "test_harness.h"

static char *write_sample(size_t *len)
{
    json_writer_t w;
    json_write_init(&w, 0);
    json_write_object_begin(&w);
    json_write_kv_string(&w, "name", "a \"quoted\"\\ line\n\x01");
    json_write_key(&w, "list");
    json_write_array_begin(&w);
    json_write_uint(&w, 1);
    json_write_int(&w, -2);
    json_write_bool(&w, true);
    json_write_null(&w);
    json_write_double(&w, 1.5, 2);
    json_write_array_end(&w);
    json_write_key(&w, "empty");
    json_write_object_begin(&w);
    json_write_object_end(&w);
    json_write_kv_string(&w, "bad utf8", "\xff\xc3\xa9");
    json_write_object_end(&w);
    return json_write_finish(&w, len);
}

TEST(writer_escapes_and_places_commas)
{
    size_t len = 0;
    char *text = write_sample(&len);
    REQUIRE(text);
    CHECK_STR(text, "{\"name\":\"a \\\"quoted\\\"\\\\ line\\u000a\\u0001\",\"list\":[1,-2,true,"
                    "null,1.50],\"empty\":{},\"bad utf8\":\"\xef\xbf\xbd\xc3\xa9\"}");
    CHECK_EQ_INT(len, strlen(text));
    free(text);
}

TEST(writer_fails_cleanly)
{
    json_writer_t w;
    json_write_init(&w, 16); /* too small for what follows */
    json_write_object_begin(&w);
    json_write_kv_string(&w, "key", "a value longer than sixteen bytes");
    json_write_object_end(&w);
    CHECK(json_write_finish(&w, NULL) == NULL);
    json_write_init(&w, 0);
    json_write_object_begin(&w); /* never closed */
    CHECK(json_write_finish(&w, NULL) == NULL);
    json_write_init(&w, 0);
    for (int i = 0; i < JSON_WRITE_MAX_DEPTH + 1; i++) {
        json_write_array_begin(&w);
    }
    CHECK(w.failed);
    json_write_discard(&w);
}

TEST(reader_round_trips_the_writer)
{
    size_t len = 0;
    char *text = write_sample(&len);
    REQUIRE(text);
    json_token_t tokens[32];
    json_doc_t doc;
    REQUIRE(json_read_parse(&doc, text, len, tokens, 32));
    char name[64];
    CHECK(json_read_string(&doc, json_read_member(&doc, 0, "name"), name, sizeof name));
    CHECK_STR(name, "a \"quoted\"\\ line\n\x01");
    int list = json_read_member(&doc, 0, "list");
    CHECK_EQ_INT(doc.tokens[list].children, 5);
    uint64_t v = 0;
    CHECK(json_read_uint(&doc, json_read_element(&doc, list, 0), 10, &v) && v == 1);
    CHECK(!json_read_uint(&doc, json_read_element(&doc, list, 1), 10, &v)); /* negative */
    bool b = false;
    CHECK(json_read_bool(&doc, json_read_element(&doc, list, 2), &b) && b);
    CHECK_EQ_INT(doc.tokens[json_read_element(&doc, list, 3)].type, JSON_NULL);
    CHECK_EQ_INT(json_read_element(&doc, list, 5), -1);
    CHECK_EQ_INT(doc.tokens[json_read_member(&doc, 0, "empty")].type, JSON_OBJECT);
    CHECK_EQ_INT(json_read_member(&doc, 0, "missing"), -1);
    free(text);
}

TEST(reader_decodes_unicode_escapes)
{
    const char *text = "{\"s\":\"\\u00e9\\ud83d\\ude00\\/\\t\"}";
    json_token_t tokens[4];
    json_doc_t doc;
    REQUIRE(json_read_parse(&doc, text, strlen(text), tokens, 4));
    char out[32];
    CHECK(json_read_string(&doc, json_read_member(&doc, 0, "s"), out, sizeof out));
    CHECK_STR(out, "\xc3\xa9\xf0\x9f\x98\x80/\t");
    CHECK(!json_read_string(&doc, json_read_member(&doc, 0, "s"), out, 4)); /* does not fit */
    const char *nul = "[\"a\\u0000b\"]";
    REQUIRE(json_read_parse(&doc, nul, strlen(nul), tokens, 4));
    CHECK(!json_read_string(&doc, 1, out, sizeof out)); /* an embedded NUL is refused */
}

TEST(reader_refuses_malformed_text)
{
    static const char *const bad[] = {
        "", "{", "{\"a\":}", "{\"a\" 1}", "[1,]", "{\"a\":1,}", "[01]", "[1.]", "[-]",
        "[\"\\x\"]", "[\"\\u12\"]", "[\"a\nb\"]", "tru", "[1] x", "{1:2}", "[\"abc",
        "[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_token_t tokens[32];
        json_doc_t doc;
        if (json_read_parse(&doc, bad[i], strlen(bad[i]), tokens, 32)) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
            CHECK(false);
        } else {
            CHECK(doc.error != NULL);
        }
    }
    json_token_t few[2];
    json_doc_t doc;
    CHECK(!json_read_parse(&doc, "[1,2,3]", 7, few, 2));
    CHECK_STR(doc.error, "too many values");
}

TEST(reader_numbers_and_limits)
{
    const char *text = "[0, 42, 18446744073709551615, 18446744073709551616, 1e3, -0.5]";
    json_token_t tokens[8];
    json_doc_t doc;
    REQUIRE(json_read_parse(&doc, text, strlen(text), tokens, 8));
    uint64_t v;
    CHECK(json_read_uint(&doc, 1, UINT64_MAX, &v) && v == 0);
    CHECK(json_read_uint(&doc, 2, 100, &v) && v == 42);
    CHECK(!json_read_uint(&doc, 2, 41, &v));
    CHECK(json_read_uint(&doc, 3, UINT64_MAX, &v) && v == UINT64_MAX);
    CHECK(!json_read_uint(&doc, 4, UINT64_MAX, &v));
    CHECK(!json_read_uint(&doc, 5, UINT64_MAX, &v)); /* exponent */
}

TEST_MAIN("json_text", TEST_ENTRY(writer_escapes_and_places_commas),
          TEST_ENTRY(writer_fails_cleanly), TEST_ENTRY(reader_round_trips_the_writer),
          TEST_ENTRY(reader_decodes_unicode_escapes), TEST_ENTRY(reader_refuses_malformed_text),
          TEST_ENTRY(reader_numbers_and_limits))
