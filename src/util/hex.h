/*
 * util/hex.h - one hexadecimal digit, either case (psk_file keys, the
 * HTTP listener's percent-decoding).
 */
#ifndef TERN_UTIL_HEX_H
#define TERN_UTIL_HEX_H

/* The value of hex digit c, or -1 when c is not one. */
static inline int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
