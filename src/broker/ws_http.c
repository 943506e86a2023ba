/*
 * ws_http.c - the pure parts of http_dir (ws_http.h). The path is checked
 * after percent-decoding, segment by segment, so that no spelling of ".."
 * walks out of the directory; the opening itself is also confined to it
 * (transport_ws.c: openat2 with RESOLVE_BENEATH), so a symbolic link out
 * of it is refused too. Dot-files (".htpasswd", ".git") are not served.
 */
#include "broker/ws_http.h"

#include <string.h>
#include <strings.h>

static int hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int ws_http_target(const char *req, char path[WS_HTTP_PATH_MAX], bool *head)
{
	*head = false;
	path[0] = '\0';
	const char *t;
	if (strncmp(req, "GET ", 4) == 0) {
		t = req + 4;
	} else if (strncmp(req, "HEAD ", 5) == 0) {
		t = req + 5;
		*head = true;
	} else {
		return 405;
	}
	if (*t != '/')
		return 400;
	/* Decoded, up to the query, the fragment or the end of the target. */
	char dec[WS_HTTP_PATH_MAX];
	size_t n = 0;
	for (t++; *t && *t != ' ' && *t != '?' && *t != '#' && *t != '\r'; t++) {
		char ch = *t;
		if (ch == '%') {
			int hi = hex(t[1]), lo = hi < 0 ? -1 : hex(t[2]);
			if (lo < 0)
				return 400;
			ch = (char)(hi << 4 | lo);
			if (ch == '\0')
				return 400;
			t += 2;
		}
		if (n + 1 >= sizeof(dec))
			return 414;
		dec[n++] = ch;
	}
	if (*t == '?' || *t == '#')
		t += strcspn(t, " \r");
	if (*t != ' ')
		return 400; /* no "HTTP/1.x" after the target */
	dec[n] = '\0';
	/* Segment by segment: empty ones are dropped ("a//b" is "a/b"). */
	size_t out = 0;
	bool dir = n == 0 || dec[n - 1] == '/';
	for (char *seg = dec, *end; *seg; seg = end) {
		end = strchr(seg, '/');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		end = end ? end + 1 : seg + len;
		if (len == 0)
			continue;
		if (seg[0] == '.')
			return 404; /* ".", "..", and dot-files */
		if (out + len + 2 >= WS_HTTP_PATH_MAX)
			return 414;
		if (out)
			path[out++] = '/';
		memcpy(path + out, seg, len);
		out += len;
	}
	if (dir) {
		static const char index[] = "index.html";
		if (out + sizeof(index) + 1 >= WS_HTTP_PATH_MAX)
			return 414;
		if (out)
			path[out++] = '/';
		memcpy(path + out, index, sizeof(index));
		return 0;
	}
	path[out] = '\0';
	return 0;
}

const char *ws_http_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	        {"html", "text/html; charset=utf-8"},
	        {"htm", "text/html; charset=utf-8"},
	        {"css", "text/css; charset=utf-8"},
	        {"js", "text/javascript; charset=utf-8"},
	        {"mjs", "text/javascript; charset=utf-8"},
	        {"json", "application/json"},
	        {"map", "application/json"},
	        {"txt", "text/plain; charset=utf-8"},
	        {"svg", "image/svg+xml"},
	        {"png", "image/png"},
	        {"jpg", "image/jpeg"},
	        {"jpeg", "image/jpeg"},
	        {"gif", "image/gif"},
	        {"ico", "image/x-icon"},
	        {"webp", "image/webp"},
	        {"wasm", "application/wasm"},
	        {"woff2", "font/woff2"},
	};
	const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}
