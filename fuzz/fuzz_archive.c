/*
 * fuzz_archive.c - libFuzzer target for what the archive reads back from a
 * database (src/archive/record.c): the user properties stored as JSON
 * pairs, which a person or another program may have written.
 *
 * Input: any bytes, handed to archive_user_parse(). It must refuse them
 * (TERN_E_MALFORMED, the output buffer as it was) or produce a block of
 * encoded user properties that the codec's own iterator walks to the end
 * with valid MQTT strings. A block it produced is turned into JSON again
 * (archive_user_json()) and parsed once more: that must give the same
 * block, byte for byte (the writer's escapes are read back exactly). The
 * input's literal prefix as a filter (archive_filter_prefix()) must be a
 * prefix of it, ending at a level separator or at the end. Any
 * disagreement aborts; under ASan nothing may leak or overrun.
 *
 * Dictionary: fuzz/archive.dict.
 */
#include <stdlib.h>
#include <string.h>

#include "archive/record.h"
#include "tern/codec.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = {0};
	enum tern_err e = archive_user_parse(&out, (const char *)data, size);
	if (e != TERN_OK) {
		if (e != TERN_E_MALFORMED && e != TERN_E_NOMEM)
			abort();
		if (out.len != 0)
			abort();
		buf_free(&out);
	} else {
		struct tern_bytes raw = {out.data, (uint32_t)out.len};
		struct tern_props props = {.raw = raw};
		size_t cur = 0, walked = 0;
		struct tern_bytes k, v;
		while (tern_props_next_user(&props, &cur, &k, &v)) {
			if (!tern_utf8_valid(k.data, k.len) || !tern_utf8_valid(v.data, v.len))
				abort();
			walked = cur;
		}
		if (walked != out.len)
			abort();
		struct buf json = {0}, again = {0};
		if (out.len) {
			if (archive_user_json(&json, raw) != TERN_OK)
				abort();
			if (archive_user_parse(&again, (const char *)json.data, json.len) !=
			            TERN_OK ||
			    again.len != out.len || memcmp(again.data, out.data, out.len) != 0)
				abort();
		}
		buf_free(&json);
		buf_free(&again);
		buf_free(&out);
	}
	struct tern_bytes f = {data, (uint32_t)(size > 65535 ? 65535 : size)};
	struct tern_bytes p = archive_filter_prefix(f);
	if (p.len > f.len || (p.len && p.data != f.data))
		abort();
	if (p.len && p.len < f.len && f.data[p.len - 1] != '/')
		abort();
	return 0;
}
