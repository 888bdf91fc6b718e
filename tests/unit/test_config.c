/* test_config.c — riftd's INI configuration: defaults, overrides, and errors naming file:line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rift/config.h"

static char path[64];

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/rift-test-config.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void write_conf(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_defaults_and_missing_file(void **state)
{
	struct rift_config cfg;
	char err[256];

	(void)state;
	rift_config_defaults(&cfg);
	assert_string_equal(cfg.router_listen, "127.0.0.1:6432");
	assert_int_equal(cfg.shared_buffers_mb, 32);
	assert_int_equal(cfg.idle_timeout_s, 600);
	assert_string_equal(cfg.pg_user, "postgres");
	assert_int_equal(cfg.max_startup_clients, 1000);
	assert_int_equal(cfg.startup_timeout_s, 10);
	assert_string_equal(cfg.start_on_connect, "always");
	assert_int_equal(cfg.uid_base, 1900000000);
	assert_int_equal(cfg.uid_count, 65536);
	assert_int_equal(rift_config_load(&cfg, "/nonexistent/rift.conf", err, sizeof(err)), 0);
}

static void test_overrides(void **state)
{
	struct rift_config cfg;
	char err[256];

	(void)state;
	write_conf(
	    "; comment\n[instances]\nidle_timeout = 0\nport_min = 60000\nport_max = 60010\n"
	    "uid_base = 3000000\nuid_count = 0\n[router]\nlisten = *:7432\n"
	    "max_startup_clients = 50\nstartup_timeout = 3\nstart_on_connect = authenticated\n");
	rift_config_defaults(&cfg);
	assert_int_equal(rift_config_load(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg.idle_timeout_s, 0);
	assert_int_equal(cfg.port_min, 60000);
	assert_string_equal(cfg.router_listen, "*:7432");
	assert_int_equal(cfg.max_startup_clients, 50);
	assert_int_equal(cfg.startup_timeout_s, 3);
	assert_string_equal(cfg.start_on_connect, "authenticated");
	assert_int_equal(cfg.uid_base, 3000000);
	assert_int_equal(cfg.uid_count, 0);
	assert_int_equal(cfg.shared_buffers_mb, 32);
	assert_int_equal(cfg.reserve_mb, 256);
	assert_true(cfg.default_max_size == 0);
	write_conf("[store]\nreserve_mb = 64\ndefault_max_size = 10G\n");
	rift_config_defaults(&cfg);
	assert_int_equal(rift_config_load(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg.reserve_mb, 64);
	assert_true(cfg.default_max_size == 10ull << 30);
}

struct size_case {
	const char *text;
	int rc;
	uint64_t bytes;
};

static const struct size_case sizes[] = {
	{ "", 0, 0 },
	{ "0", 0, 0 },
	{ "512", 0, 512 },
	{ "512B", 0, 512 },
	{ "64k", 0, 64ull << 10 },
	{ "48M", 0, 48ull << 20 },
	{ "10G", 0, 10ull << 30 },
	{ "10GiB", 0, 10ull << 30 },
	{ "2TB", 0, 2ull << 40 },
	{ "-1", -1, 0 },
	{ "1.5G", -1, 0 },
	{ "G", -1, 0 },
	{ "10 G", -1, 0 },
	{ "10X", -1, 0 },
	{ "99999999999T", -1, 0 },
	{ "99999999999999999999", -1, 0 },
};

static void test_sizes(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t v = 42;
		int rc = rift_config_parse_size(sizes[i].text, &v);
		if (rc != sizes[i].rc || (rc == 0 && v != sizes[i].bytes))
			fail_msg("size \"%s\": rc %d value %llu", sizes[i].text, rc,
				 (unsigned long long)v);
	}
}

struct bad_case {
	const char *text, *want_in_error;
};

static const struct bad_case bad[] = {
	{ "[instances]\nidle_timout = 5\n", ":2: unknown key \"idle_timout\"" },
	{ "[instances]\n\nport_min = 80\n",
	  ":3: [instances] port_min: \"80\" is not a whole number "
	  "from 1024 to 65535" },
	{ "[instances]\nshared_buffers_mb = 12abc\n", "\"12abc\" is not a whole number" },
	{ "[nope]\nx = 1\n", "unknown key \"x\" in section [nope]" },
	{ "[instances]\nport_min = 9000\nport_max = 8000\n", "port_min (9000) is above port_max" },
	{ "[instances]\npg_user = root\n", "must not be root" },
	{ "[instances]\nuid_base = 0\n", "uid_base: \"0\" is not a whole number from 1000" },
	{ "[instances]\nuid_count = -1\n", "uid_count: \"-1\" is not a whole number" },
	{ "[instances]\nuid_base = 2147480000\nuid_count = 65536\n", "goes past 2147483647" },
	{ "this is not ini\n", ":1: not an INI line" },
	{ "[router]\nmax_startup_clients = 0\n",
	  "[router] max_startup_clients: \"0\" is not a whole number from 1 to 100000" },
	{ "[router]\nstartup_timeout = 0\n", "[router] startup_timeout: \"0\" is not" },
	{ "[router]\nstart_on_connect = sometimes\n",
	  "start_on_connect = sometimes: expected always or authenticated" },
	{ "[store]\ndefault_max_size = 10X\n", "[store] default_max_size: \"10X\" is not a size" },
	{ "[store]\nreserve_mb = -1\n", "[store] reserve_mb: \"-1\" is not a whole number" },
	{ "[instances]\nmax_processes = 10\n", "max_processes = 10 leaves a server too few" },
	{ "[instances]\nmax_processes = -1\n", "max_processes: \"-1\" is not a whole number" },
};

static void test_bad_values_name_file_and_line(void **state)
{
	struct rift_config cfg;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_conf(bad[i].text);
		rift_config_defaults(&cfg);
		assert_int_equal(rift_config_load(&cfg, path, err, sizeof(err)), -1);
		if (strstr(err, bad[i].want_in_error) == NULL || strstr(err, path) == NULL)
			fail_msg("case %zu: error \"%s\" lacks \"%s\" or the path", i, err,
				 bad[i].want_in_error);
	}
}

/* A line libinih would split (its tail read as a line of its own) is refused, saying where. */
static void test_long_line_refused(void **state)
{
	struct rift_config cfg;
	char err[512], comment[400];
	FILE *f;

	(void)state;
	memset(comment, 'x', sizeof(comment) - 1);
	comment[sizeof(comment) - 1] = '\0';
	memcpy(comment + 250, " idle_timeout = 1 ", 18); /* what the split would have set */
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[instances]\n; %s\nwarm = 0\n", comment);
	fclose(f);
	rift_config_defaults(&cfg);
	assert_int_equal(rift_config_load(&cfg, path, err, sizeof(err)), -1);
	if (strstr(err, ":2: a line longer than") == NULL)
		fail_msg("error \"%s\" does not name line 2 as too long", err);
	assert_int_equal(cfg.idle_timeout_s, 600);
}

/* Every line rift init writes is short enough to read and to read comfortably. */
static void test_written_defaults_are_short(void **state)
{
	char err[256], line[1024];
	FILE *f;

	(void)state;
	unlink(path);
	assert_int_equal(rift_config_write_defaults(path, err, sizeof(err)), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strlen(line) > 100)
			fail_msg("rift.conf line longer than 99 characters: %s", line);
	fclose(f);
}

static void test_written_defaults_load_back(void **state)
{
	struct rift_config a, b;
	char err[256];

	(void)state;
	unlink(path);
	assert_int_equal(rift_config_write_defaults(path, err, sizeof(err)), 0);
	assert_int_equal(rift_config_write_defaults(path, err, sizeof(err)),
			 -1); /* never clobbers */
	rift_config_defaults(&a);
	memset(&b, 0x55, sizeof(b));
	rift_config_defaults(&b);
	assert_int_equal(rift_config_load(&b, path, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults_and_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overrides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values_name_file_and_line, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_written_defaults_load_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_written_defaults_are_short, setup, teardown),
		cmocka_unit_test(test_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
