/*
 * fuzz_util.h - helpers shared by the fuzz targets that feed a file to a
 * loader (config, password file, acl_file).
 *
 * The loaders take a path, so the input is written to an anonymous memory
 * file (memfd) and the loader opens "/proc/self/fd/N": no file on disk, and
 * each open starts at offset 0. One memfd serves a whole fuzzing process;
 * each run truncates and rewrites it.
 */
#ifndef TERN_FUZZ_UTIL_H
#define TERN_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replaces the content of the process's memfd with data[0..size) and
 * writes its path into path[0..len). Aborts if the memfd cannot be made
 * or written: a harness failure, not a finding. */
static inline void fuzz_memfd_path(const uint8_t *data, size_t size, char *path, size_t len)
{
	static int fd = -1;
	if (fd < 0) {
		fd = memfd_create("fuzz-input", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
	}
	if (ftruncate(fd, 0) < 0) {
		perror("ftruncate");
		abort();
	}
	size_t off = 0;
	while (off < size) {
		ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
		if (n <= 0) {
			perror("pwrite");
			abort();
		}
		off += (size_t)n;
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
}

#endif
