/* Base64 encoder and strict decoder. */
#include "common/base64.h"

#include <stdint.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(struct sbuf *dst, const void *src, size_t len)
{
	const unsigned char *s = src;
	char *out = sbuf_reserve(dst, BASE64_ENCODED_LEN(len));
	size_t o = 0, i = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		out[o++] = base64_alphabet[v >> 18];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = base64_alphabet[(v >> 6) & 63];
		out[o++] = base64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)s[i + 1] << 8;
		out[o++] = base64_alphabet[v >> 18];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? base64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	sbuf_commit(dst, o);
}

static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long base64_decode(const char *src, size_t len, unsigned char *dst)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1; /* data after padding */
			v[k] = base64_value(s[i + k]);
			if (v[k] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			(uint32_t)v[2] << 6 | (uint32_t)v[3];
		dst[o++] = (unsigned char)(w >> 16);
		if (pad < 2)
			dst[o++] = (unsigned char)(w >> 8);
		if (pad < 1)
			dst[o++] = (unsigned char)w;
	}
	return (long)o;
}
