/* pq_client.c — a libpq client for the router tests: query, then cancel a sleeping query. */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * pq_client CONNINFO --stale-cancel: a client that left (its server session kept by the router)
 * sends its old CancelRequest while the next client of that same session runs a query; the
 * query must finish. Prints stale-cancel=ignored, or why not.
 */
static int stale_cancel(const char *conninfo)
{
	PGconn *a = PQconnectdb(conninfo), *b = NULL;
	PGcancel *old = NULL;
	PGresult *r;
	char errbuf[256];
	int pid, rc = 1;
	struct timespec wait = { 0, 300 * 1000 * 1000 };

	if (PQstatus(a) != CONNECTION_OK) {
		fprintf(stderr, "pq_client: %s", PQerrorMessage(a));
		goto out;
	}
	old = PQgetCancel(a);
	pid = PQbackendPID(a);
	PQfinish(a);
	a = NULL;
	nanosleep(&wait, NULL); /* the router resets the session and keeps it */
	b = PQconnectdb(conninfo);
	if (PQstatus(b) != CONNECTION_OK || PQbackendPID(b) != pid) {
		fprintf(stderr, "pq_client: the second connection did not reuse the session\n");
		goto out;
	}
	if (!PQsendQuery(b, "select pg_sleep(1.5)"))
		goto out;
	nanosleep(&wait, NULL);
	PQcancel(old, errbuf, sizeof(errbuf));
	rc = 0;
	while ((r = PQgetResult(b)) != NULL) {
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			fprintf(stderr, "pq_client: the stale cancel reached the query: %s",
				PQresultErrorMessage(r));
			rc = 1;
		}
		PQclear(r);
	}
	if (rc == 0)
		printf("stale-cancel=ignored\n");
out:
	if (old != NULL)
		PQfreeCancel(old);
	PQfinish(a);
	PQfinish(b);
	return rc;
}

/* Usage: pq_client CONNINFO — prints the demo order count, then checks that PQcancel stops a
 * pg_sleep(30) within seconds and that the connection still works afterwards. */
int main(int argc, char **argv)
{
	PGconn *c;
	PGresult *r;
	PGcancel *cancel;
	char errbuf[256];
	time_t t0;
	int rc = 1;

	if (argc == 3 && strcmp(argv[2], "--stale-cancel") == 0)
		return stale_cancel(argv[1]);
	if (argc != 2) {
		fprintf(stderr, "usage: pq_client CONNINFO [--stale-cancel]\n");
		return 2;
	}
	c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pq_client: %s", PQerrorMessage(c));
		goto out;
	}
	r = PQexec(c, "select count(*) from orders");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pq_client: %s", PQerrorMessage(c));
		PQclear(r);
		goto out;
	}
	printf("orders=%s\n", PQgetvalue(r, 0, 0));
	PQclear(r);
	if (!PQsendQuery(c, "select pg_sleep(30)"))
		goto out;
	t0 = time(NULL);
	{
		struct timespec half = { 0, 500 * 1000 * 1000 };
		nanosleep(&half, NULL);
	}
	cancel = PQgetCancel(c);
	if (cancel == NULL || !PQcancel(cancel, errbuf, sizeof(errbuf))) {
		fprintf(stderr, "pq_client: cancel failed: %s\n", errbuf);
		goto out;
	}
	PQfreeCancel(cancel);
	while ((r = PQgetResult(c)) != NULL) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (PQresultStatus(r) == PGRES_FATAL_ERROR && state && strcmp(state, "57014") == 0)
			rc = 0;
		PQclear(r);
	}
	if (rc != 0 || time(NULL) - t0 > 10) {
		fprintf(stderr, "pq_client: the sleeping query was not cancelled\n");
		rc = 1;
		goto out;
	}
	r = PQexec(c, "select 1");
	rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : 1;
	PQclear(r);
	printf("cancel=ok\n");
out:
	PQfinish(c);
	return rc;
}
