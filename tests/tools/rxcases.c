/*
 * Random LVM filter patterns and device names, judged by libdevmapper's own regex engine
 * (dm_regex_create, dm_regex_match: what lvm.conf's filters run on), for the test
 * lvm_patterns_agree_with_libdevmapper in src/lvm/devsel/rx.rs:
 *
 *   cc -o rxcases tests/tools/rxcases.c -ldevmapper      (libdevmapper-dev)
 *   ./rxcases 5000 >cases.txt 2>/dev/null   (libdevmapper logs every pattern it refuses)
 *   REWIND_RX_CASES=$PWD/cases.txt cargo test --lib devsel::rx -- --ignored --nocapture
 *
 * Output, one line per case, fields in hex ("-" when empty): "PATTERN NAME 0|1", or
 * "PATTERN refused" when libdevmapper does not compile the pattern.
 */
#include <libdevmapper.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 88172645463325252ULL;

static unsigned below(unsigned n)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (unsigned)(state % n);
}

static void hex(const char *s)
{
	if (!*s)
		putchar('-');
	for (; *s; s++)
		printf("%02x", (unsigned char)*s);
}

static void pick(char *out, int len, const char *alphabet)
{
	for (int k = 0; k < len; k++)
		out[k] = alphabet[below(strlen(alphabet))];
	out[len] = 0;
}

int main(int argc, char **argv)
{
	/* The dialect's special characters, an escape, a newline; names with the bytes '.' never matches. */
	const char *pattern_bytes = "ab/.^$*+?|()[]-\\\nxn", *name_bytes = "ab/-x\n\r.";
	int patterns = argc > 1 ? atoi(argv[1]) : 5000, refused = 0;
	char pattern[16], name[16];

	for (int i = 0; i < patterns; i++) {
		struct dm_pool *mem = dm_pool_create("rxcases", 1024);
		const char *list[1] = { pattern };
		struct dm_regex *rx;

		if (!mem)
			return 1;
		pick(pattern, 1 + below(10), pattern_bytes);
		if (!(rx = dm_regex_create(mem, list, 1))) {
			hex(pattern);
			printf(" refused\n");
			refused++;
		} else
			for (int j = 0; j < 40; j++) {
				pick(name, below(9), name_bytes);
				hex(pattern);
				putchar(' ');
				hex(name);
				printf(" %d\n", dm_regex_match(rx, name) >= 0);
			}
		dm_pool_destroy(mem);
	}
	fprintf(stderr, "%d patterns, %d refused by libdevmapper\n", patterns, refused);
	return 0;
}
