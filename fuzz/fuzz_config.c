/*
 * fuzz_config.c - libFuzzer target for the configuration file parser.
 *
 * Input: the bytes of a mosquitto.conf-style file. They are written to a
 * memfd (fuzz_util.h) and read with config_load() over defaults, as ternd
 * reads `-c FILE`; when the file loads, config_check() judges it as a
 * whole. Neither may crash, read out of bounds or leak, whatever the
 * bytes: long lines, NULs, numbers out of range, too many listeners,
 * directives with missing or extra arguments. The error message must be
 * a NUL-terminated string within the buffer, which the target checks by
 * taking its length.
 *
 * Parsing is pure (no file named in the config is opened), so the target
 * is deterministic. Dictionary: fuzz/config.dict (every directive name
 * and keyword).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	fuzz_memfd_path(data, size, path, sizeof(path));

	static struct config cfg; /* large: keep it off the stack */
	config_defaults(&cfg);
	char err[512];
	memset(err, 'x', sizeof(err) - 1);
	err[sizeof(err) - 1] = '\0';
	enum tern_err rc = config_load(&cfg, path, err, sizeof(err));
	if (rc != TERN_OK) {
		if (strlen(err) >= sizeof(err))
			abort();
		return 0;
	}
	if (cfg.n_listeners > MAX_LISTENERS)
		abort();
	for (size_t i = 0; i < cfg.n_listeners; i++)
		if (strnlen(cfg.listeners[i].bind, sizeof(cfg.listeners[i].bind)) ==
		    sizeof(cfg.listeners[i].bind))
			abort();
	err[0] = '\0';
	(void)config_check(&cfg, err, sizeof(err));
	return 0;
}
