/*
 * allreduce: times MPI_Allreduce (float32, MPI_SUM) at several sizes, the
 * way nccl-tests and the OSU benchmarks do, for comparison with
 * `raygo bench collectives`.
 *
 *   mpicc -O2 -o allreduce allreduce.c
 *   mpirun -np 2 ./allreduce [-sizes 4,4K,64K,1M,16M,64M] [-min-time 0.2]
 *                            [-label NAME] [-json]
 *
 * For each size: warm-up (at least 2 iterations and a tenth of -min-time),
 * then about -min-time of iterations in 5 batches, each started after a
 * barrier. A batch's time is its slowest rank's; "time" is the mean over
 * all batches, "min" the fastest batch's mean. algbw is bytes / time and
 * busbw algbw * 2(n-1)/n, as nccl-tests reports for allreduce. The result
 * is checked once per size. -json prints one object per line, in the
 * format of `raygo bench collectives --json` (plus min_us and library).
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCHES 5

static int rank, size;

static void die(const char *msg) {
	if (rank == 0) fprintf(stderr, "allreduce: %s\n", msg);
	MPI_Abort(MPI_COMM_WORLD, 2);
}

/* parse_sizes reads "4,4K,1M" (K, M, G are powers of 1024). */
static int parse_sizes(const char *s, long long *out, int max) {
	int n = 0;
	char *copy = strdup(s), *save = NULL;
	for (char *f = strtok_r(copy, ",", &save); f && n < max; f = strtok_r(NULL, ",", &save)) {
		char *end;
		long long v = strtoll(f, &end, 10);
		switch (*end) {
		case 'K': case 'k': v <<= 10; end++; break;
		case 'M': case 'm': v <<= 20; end++; break;
		case 'G': case 'g': v <<= 30; end++; break;
		}
		if (*end || v < 0 || end == f) {
			free(copy);
			return -1;
		}
		out[n++] = v;
	}
	free(copy);
	return n;
}

/* timed runs iters allreduces; returns the slowest rank's time. */
static double timed(float *send, float *recv, int count, long iters) {
	MPI_Barrier(MPI_COMM_WORLD);
	double t0 = MPI_Wtime();
	for (long i = 0; i < iters; i++) MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
	double t = MPI_Wtime() - t0, slowest;
	MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
	return slowest;
}

int main(int argc, char **argv) {
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	const char *sizes_arg = "4,4K,64K,1M,16M,64M", *label = "mpi";
	double min_time = 0.2;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-sizes") && i + 1 < argc) sizes_arg = argv[++i];
		else if (!strcmp(argv[i], "-min-time") && i + 1 < argc) min_time = atof(argv[++i]);
		else if (!strcmp(argv[i], "-label") && i + 1 < argc) label = argv[++i];
		else if (!strcmp(argv[i], "-json")) json = 1;
		else die("usage: allreduce [-sizes 4,4K,1M] [-min-time SECONDS] [-label NAME] [-json]");
	}
	long long sizes[64];
	int nsizes = parse_sizes(sizes_arg, sizes, 64);
	if (nsizes <= 0) die("-sizes: want byte counts such as 4,4K,1M,64M");
	char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
	int liblen;
	MPI_Get_library_version(lib, &liblen);
	lib[strcspn(lib, "\n,")] = 0;
	double busf = size > 1 ? 2.0 * (size - 1) / size : 1;

	if (rank == 0 && !json) {
		printf("# MPI_Allreduce float32 sum, %s, %d ranks, %s\n", label, size, lib);
		printf("# %12s %12s %12s %12s %12s %12s %8s\n", "size(B)", "count", "time(us)", "min(us)", "algbw(GB/s)", "busbw(GB/s)", "iters");
	}
	for (int s = 0; s < nsizes; s++) {
		long long bytes = sizes[s] / 4 * 4;
		if (bytes / 4 > 0x7fffffff) die("size too large for one MPI call");
		int count = (int)(bytes / 4);
		float *send = malloc(bytes + 4), *recv = malloc(bytes + 4);
		if (!send || !recv) die("out of memory");
		for (int i = 0; i < count; i++) send[i] = (float)(rank + 1);
		memset(recv, 0, bytes);

		/* warm-up */
		double warm = 0;
		long done = 0;
		while (done < 2 || warm < min_time / 10) {
			warm += timed(send, recv, count, 1);
			done++;
		}
		for (int i = 0; i < count; i++) {
			if (recv[i] != (float)size * (size + 1) / 2) die("wrong result");
		}
		long iters = (long)(min_time / BATCHES / (warm / done));
		if (iters < 2) iters = 2;
		if (iters > 200000) iters = 200000;
		double total = 0, best = 1e30;
		for (int b = 0; b < BATCHES; b++) {
			double t = timed(send, recv, count, iters);
			total += t;
			if (t < best) best = t;
		}
		double us = total / (BATCHES * iters) * 1e6, min_us = best / iters * 1e6;
		double algbw = us > 0 ? bytes / us / 1e3 : 0;
		if (rank == 0) {
			if (json)
				printf("{\"op\":\"allreduce\",\"backend\":\"%s\",\"ranks\":%d,\"bytes\":%lld,\"dtype\":\"float32\",\"iters\":%ld,"
				       "\"time_us\":%.3f,\"min_us\":%.3f,\"algbw_gbs\":%.4f,\"busbw_gbs\":%.4f,\"library\":\"%s\"}\n",
				       label, size, bytes, BATCHES * iters, us, min_us, algbw, algbw * busf, lib);
			else
				printf("  %12lld %12d %12.2f %12.2f %12.3f %12.3f %8ld\n", bytes, count, us, min_us, algbw, algbw * busf, BATCHES * iters);
			fflush(stdout);
		}
		free(send);
		free(recv);
	}
	MPI_Finalize();
	return 0;
}
