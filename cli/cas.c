/* cas - read, write, verify and migrate Metaflow artifact stores with cas.h.
 * Exit status: 0 success, 1 data error (one line on stderr), 2 usage error. */
#define _POSIX_C_SOURCE 200809L /* getcwd, isatty, PATH_MAX under -std=c99 */
#include "../cas_pickle.h" /* includes cas.h */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h> /* PR_SET_DUMPABLE: no core dump holds a credential */
#endif

#define EXIT_DATA 1
#define EXIT_USAGE 2

static const char *prog = "cas";

static const char usage_main[] =
    "usage: cas COMMAND [ARGS]\n"
    "\n"
    "  artifact PATHSPEC/NAME [--root ROOT] [--verify]   decoded artifact bytes to stdout\n"
    "  ls [FLOW[/RUN[/STEP[/TASK]]]] [--root ROOT] [--json]  flows, runs (newest first; RUN may\n"
    "                                                   be 'latest'), steps, tasks, a task's artifacts\n"
    "  cat BLOBFILE [--verify]                          decode one blob file (its sidecar beside it, if any)\n"
    "  stat BLOBFILE                                    format, version, stored and decoded size, ratio\n"
    "  show PATHSPEC/NAME|BLOBFILE [--root ROOT] [--json] [--items N] [--depth N] [--max-bytes N]\n"
    "                                                   the artifact's value, read without unpickling\n"
    "  put --flow FLOW [--root ROOT] [--v1|--v2|--raw] [FILE]  store a file or stdin; print the key\n"
    "  get --flow FLOW KEY [--root ROOT] [--verify]      decoded bytes to stdout\n"
    "  verify [--root ROOT] [--quiet] [FLOW...]          rehash every blob; non-zero exit if any is bad\n"
    "  migrate --to v1|v2 [--root ROOT] [--quiet] [FLOW...]  re-encode blobs in place; keys unchanged\n"
    "  gc [--root ROOT]                                  remove what crashed writers left behind\n"
    "  version                                          print the library version\n"
    "\n"
    "The root is the datastore: a directory (the one holding Flow/ folders), an S3 URL,\n"
    "s3://bucket/prefix (Metaflow's METAFLOW_DATASTORE_SYSROOT_S3), or an Azure one,\n"
    "azure://container/prefix (METAFLOW_DATASTORE_SYSROOT_AZURE). By default it is the root\n"
    "Metaflow would use: with METAFLOW_DEFAULT_DATASTORE=s3 or azure (environment or\n"
    "~/.metaflowconfig/config.json), METAFLOW_DATASTORE_SYSROOT_S3 or _AZURE; else\n"
    "$METAFLOW_DATASTORE_SYSROOT_LOCAL/.metaflow, else the nearest .metaflow above the working\n"
    "directory. 'cas COMMAND --help' tells more.\n"
    "\n"
    "S3 settings (the AWS SDKs' and Metaflow's own):\n"
    "  METAFLOW_S3_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL   the endpoint (else AWS's)\n"
    "  AWS_REGION, AWS_DEFAULT_REGION                                    the region (us-east-1)\n"
    "  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN       credentials, else web\n"
    "      identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), AWS_PROFILE in ~/.aws/credentials\n"
    "      and ~/.aws/config, the ECS/EKS container endpoint, EC2 instance metadata (IMDSv2)\n"
    "  METAFLOW_S3_SERVER_SIDE_ENCRYPTION                                x-amz-server-side-encryption\n"
    "  AWS_CA_BUNDLE                                                     CA certificates for TLS\n"
    "  AWS_MAX_ATTEMPTS (5), CAS_S3_CONNECT_TIMEOUT (10 s), CAS_S3_STALL_TIMEOUT (60 s),\n"
    "  CAS_S3_CONNECTIONS (16), CAS_S3_PART_SIZE (8 MiB), CAS_S3_ADDRESSING_STYLE (path|virtual),\n"
    "  CAS_S3_GC_AGE (86400 s: gc aborts unfinished uploads older than this), CAS_S3_LIST_PAGE (1000),\n"
    "  CAS_S3_RANGED_MIN (32 MiB: larger objects are read in 4 MiB ranges, four at once; 0: one GET;\n"
    "      a server on this machine is read in one GET unless it is set)\n"
    "\n"
    "Azure settings (Metaflow's and the Azure SDKs'); the CAS_S3_* tuning above applies too:\n"
    "  METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT   https://ACCOUNT.blob.core.windows.net/ (a SAS\n"
    "      in its query is used), else the connection string's, else from AZURE_STORAGE_ACCOUNT\n"
    "  AZURE_STORAGE_KEY, AZURE_STORAGE_CONNECTION_STRING (AccountName, AccountKey, BlobEndpoint,\n"
    "      SharedAccessSignature), AZURE_STORAGE_SAS_TOKEN   a shared key or a SAS token, else\n"
    "      Microsoft Entra ID: AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET, or\n"
    "      AZURE_FEDERATED_TOKEN_FILE (workload identity), or a managed identity\n"
    "  REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE                CA certificates for TLS\n";

typedef struct opts {
    const char *root, *flow, *to;
    int verify, quiet, verbose, format, help, json;
    const char *limit[4]; /* show: --max-bytes, --items, --depth, --max-read */
    const char *args[64];
    int nargs;
} opts;

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, "\nTry 'cas --help'.\n");
    return EXIT_USAGE;
}

static int data_error(const char *msg) {
    fprintf(stderr, "%s: %s\n", prog, msg);
    return EXIT_DATA;
}

/* The options of every subcommand, one table; each subcommand names those it takes. */
enum { O_ROOT = 256, O_FLOW, O_TO, O_MAX_BYTES, O_ITEMS, O_DEPTH, O_MAX_READ, O_JSON, O_VERIFY, O_V1, O_V2, O_RAW };
static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},         {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},      {"root", required_argument, NULL, O_ROOT},
    {"flow", required_argument, NULL, O_FLOW}, {"to", required_argument, NULL, O_TO},
    {"max-bytes", required_argument, NULL, O_MAX_BYTES}, {"items", required_argument, NULL, O_ITEMS},
    {"depth", required_argument, NULL, O_DEPTH}, {"max-read", required_argument, NULL, O_MAX_READ},
    {"json", no_argument, NULL, O_JSON},      {"verify", no_argument, NULL, O_VERIFY},
    {"v1", no_argument, NULL, O_V1},          {"v2", no_argument, NULL, O_V2},
    {"raw", no_argument, NULL, O_RAW},        {NULL, 0, NULL, 0}};

/* 1 if the space-separated list names "--name". */
static int takes(const char *allowed, const char *name) {
    size_t n = strlen(name);
    const char *p = allowed;
    while ((p = strstr(p, name)) != NULL) {
        if (p >= allowed + 2 && p[-1] == '-' && p[-2] == '-' && (p[n] == ' ' || !p[n])) return 1;
        p += n;
    }
    return 0;
}

/* Parses a subcommand's arguments (argv[0] is its name) with getopt_long: --opt=VALUE
 * or --opt VALUE, options anywhere, "--" ends them, "-" is an argument (stdin). An
 * option the subcommand does not take is a usage error. */
static int parse(int argc, char **argv, opts *o, const char *allowed) {
    int c, li;
    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":hqv", options, &li)) != -1) {
        const char *name = NULL;
        size_t i;
        if (c == '?') return usage_error("unknown option '%s'", argv[optind - 1]);
        if (c == ':') return usage_error("%s needs a value", argv[optind - 1]);
        for (i = 0; options[i].name; i++)
            if (options[i].val == c) name = options[i].name;
        if (c != 'h' && !takes(allowed, name)) return usage_error("unknown option '%s'", argv[optind - 1]);
        switch (c) {
        case 'h': o->help = 1; break;
        case 'q': o->quiet = 1; break;
        case 'v': o->verbose = 1; break;
        case O_ROOT: o->root = optarg; break;
        case O_FLOW: o->flow = optarg; break;
        case O_TO: o->to = optarg; break;
        case O_MAX_BYTES: case O_ITEMS: case O_DEPTH: case O_MAX_READ: o->limit[c - O_MAX_BYTES] = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_VERIFY: o->verify = 1; break;
        case O_V1: o->format = CAS_FORMAT_V1; break;
        case O_V2: o->format = CAS_FORMAT_V2; break;
        default: o->format = CAS_FORMAT_RAW; break;
        }
    }
    for (; optind < argc; optind++) {
        if (o->nargs == 64) return usage_error("too many arguments%s", NULL);
        o->args[o->nargs++] = argv[optind];
    }
    return 0;
}

static int open_store(const opts *o, cas_store **s) {
    char rootbuf[PATH_MAX + 16], err[1024];
    const char *root = o->root;
    if (!root) { /* Metaflow's own: its configuration, then the nearest .metaflow */
        if (cas_store_default_root(rootbuf, sizeof rootbuf, err, sizeof err) < 0) {
            fprintf(stderr, "%s: %s; pass --root ROOT\n", prog, err);
            return EXIT_USAGE;
        }
        root = rootbuf;
    }
    if (cas_store_open(s, root, NULL, err, sizeof err) < 0) return data_error(err);
    if (o->verify) cas_store_set_param(*s, CAS_PARAM_VERIFY, 1); /* an object store's reads always are */
    return 0;
}

static int write_out(const void *p, size_t n) {
    if (n && fwrite(p, 1, n, stdout) != n) {
        fprintf(stderr, "%s: cannot write to stdout: %s\n", prog, strerror(errno));
        return EXIT_DATA;
    }
    return 0;
}

/* Streams a decoded blob to stdout; memory stays at the stream's window. */
static int pump(cas_stream *st) {
    static unsigned char buf[1 << 20]; /* large writes: fewer system calls for a large artifact */
    for (;;) {
        size_t got;
        int rc = cas_stream_read(st, buf, sizeof buf, &got);
        if (rc < 0) {
            fflush(stdout);
            return data_error(cas_stream_message(st));
        }
        if (!got) break;
        if (write_out(buf, got)) return EXIT_DATA;
    }
    if (fflush(stdout) != 0) return data_error("cannot write to stdout");
    return 0;
}

/* "Flow/run/step/task/name" -> pathspec and artifact name. */
static int split_artifact(const char *spec, char *pathspec, size_t cap, const char **name) {
    const char *slash = strrchr(spec, '/');
    if (!slash || (size_t)(slash - spec) >= cap || !slash[1]) return -1;
    memcpy(pathspec, spec, (size_t)(slash - spec));
    pathspec[slash - spec] = 0;
    *name = slash + 1;
    return 0;
}

/* Opens the store and the stream of FLOW/RUN/STEP/TASK/NAME (the task's latest finished
 * attempt, as Metaflow reads it); *size is data.json's size of the artifact. */
/* enc (nullable) receives data.json's encoding of the artifact ("" when none is recorded). */
static int open_artifact(const opts *o, const char *spec, cas_store **s, cas_stream **st, int64_t *size, char *enc,
                         size_t enccap) {
    cas_task *t;
    char pathspec[1024], err[1024], msg[1200];
    const char *name, *key;
    size_t idx;
    int rc;
    if (split_artifact(spec, pathspec, sizeof pathspec, &name) < 0 || cas_pathspec_check(pathspec) < 0)
        return usage_error("'%s' is not FLOW/RUN/STEP/TASK/NAME", spec);
    if ((rc = open_store(o, s))) return rc;
    if (cas_task_open(*s, pathspec, &t, err, sizeof err) < 0) rc = data_error(err);
    else {
        if (cas_task_find(t, name, &idx) < 0) {
            snprintf(msg, sizeof msg, "task '%s' has no artifact '%s'", pathspec, name);
            rc = data_error(msg);
        } else {
            const char *encoding = NULL;
            cas_task_artifact(t, idx, NULL, &key, size, &encoding, NULL);
            if (enc) snprintf(enc, enccap, "%s", encoding ? encoding : "");
            if (cas_stream_open(*s, cas_task_flow(t), key, st, err, sizeof err) < 0) rc = data_error(err);
        }
        cas_task_close(t);
    }
    if (rc) cas_store_close(*s);
    return rc;
}

static int cmd_artifact(int argc, char **argv) {
    opts o;
    cas_store *s;
    cas_stream *st;
    int64_t size;
    int rc;
    if ((rc = parse(argc, argv, &o, "--root --verify"))) return rc;
    if (o.help) {
        printf("usage: cas artifact FLOW/RUN/STEP/TASK/NAME [--root ROOT] [--verify]\n\n"
               "Writes the artifact's decoded bytes (its pickle, or its serializer's bytes) to stdout, streaming: memory stays\n"
               "bounded whatever the size. The task's latest finished attempt is used, as Metaflow\n"
               "does. --verify rehashes the bytes against the key and checks the recorded size.\n");
        return 0;
    }
    if (o.nargs != 1) return usage_error("artifact takes one FLOW/RUN/STEP/TASK/NAME%s", NULL);
    if ((rc = open_artifact(&o, o.args[0], &s, &st, &size, NULL, 0))) return rc;
    /* --verify: the stream rehashes against the key; data.json's size is checked too */
    if (o.verify && size >= 0) cas_stream_set_param(st, CAS_PARAM_EXPECT_SIZE, size);
    rc = pump(st);
    cas_stream_close(st);
    cas_store_close(s);
    return rc;
}

static int read_stream(void *user, void *buf, size_t cap, size_t *got) {
    return cas_stream_read((cas_stream *)user, buf, cap, got);
}

static int cmd_show(int argc, char **argv) {
    static const int params[4] = {CAS_PREVIEW_MAX_OUTPUT, CAS_PREVIEW_MAX_ITEMS, CAS_PREVIEW_MAX_DEPTH,
                                  CAS_PREVIEW_MAX_READ};
    static const char *const names[4] = {"--max-bytes", "--items", "--depth", "--max-read"};
    opts o;
    cas_store *s = NULL;
    cas_stream *st;
    cas_preview *p;
    struct stat sb;
    char err[1024], enc[256] = "";
    int64_t size = -1;
    int rc, i;
    if ((rc = parse(argc, argv, &o, "--root --json --max-bytes --items --depth --max-read"))) return rc;
    if (o.help) {
        printf("usage: cas show FLOW/RUN/STEP/TASK/NAME [--root ROOT] [OPTIONS]\n"
               "       cas show BLOBFILE [OPTIONS]\n\n"
               "Shows an artifact's value, like Python's repr, by reading its pickle opcodes: nothing\n"
               "is unpickled or imported, so no code of the pickle runs and neither numpy, pandas nor\n"
               "the flow's classes are needed. numpy arrays show their shape, dtype and first values\n"
               "after reading only those; pandas frames their shape, columns and first rows (their\n"
               "column names come last in the pickle: the whole artifact is read, in bounded memory).\n"
               "A limit reached leaves a partial preview with a marker ('...', '<truncated: ...>').\n"
               "An artifact another serializer wrote (data.json's encoding is not pickle-vN or\n"
               "gzip+pickle-vN, Metaflow 2.20+) is never parsed: its encoding, size and first bytes.\n\n"
               "  --json         a JSON tree ({\"type\": ..., \"repr\": ...}) instead of text\n"
               "  --items N      items shown per container, values per array row (10)\n"
               "  --depth N      nesting levels shown (8)\n"
               "  --max-bytes N  bytes of output (4096)\n"
               "  --max-read N   decoded bytes read at most (no limit)\n"
               "Exit status 1 for a malformed pickle or a blob that cannot be read (what came before\n"
               "is still shown).\n");
        return 0;
    }
    if (o.nargs != 1) return usage_error("show takes one FLOW/RUN/STEP/TASK/NAME or BLOBFILE%s", NULL);
    if (cas_preview_create(&p, NULL) < 0) return data_error("out of memory");
    for (i = 0; i < 4; i++) {
        char *end;
        long long v;
        if (!o.limit[i]) continue;
        errno = 0;
        v = strtoll(o.limit[i], &end, 10);
        if (end == o.limit[i] || *end || errno || cas_preview_set_param(p, params[i], v) < 0) {
            cas_preview_free(p);
            snprintf(err, sizeof err, "%s %.100s: not a number in range", names[i], o.limit[i]);
            return usage_error("%s", err);
        }
    }
    if (o.json) cas_preview_set_param(p, CAS_PREVIEW_JSON, 1);
    /* a file on disk is a blob file; anything else names an artifact */
    if (stat(o.args[0], &sb) < 0 && (o.args[0][0] == '/' || o.args[0][0] == '.')) {
        cas_preview_free(p);
        snprintf(err, sizeof err, "Cannot open '%.900s': %s", o.args[0], strerror(errno));
        return data_error(err);
    }
    if (stat(o.args[0], &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (cas_stream_open_file(&st, o.args[0], NULL, 0, NULL, err, sizeof err) < 0) {
            cas_preview_free(p);
            return data_error(err);
        }
    } else if ((rc = open_artifact(&o, o.args[0], &s, &st, &size, enc, sizeof enc))) {
        cas_preview_free(p);
        return rc;
    }
    /* another serializer's bytes (data.json's encoding) are named, never parsed as a pickle */
    rc = enc[0] && !cas_encoding_is_pickle(enc) ? cas_preview_encoded(p, enc, size, read_stream, st)
                                                : cas_stream_preview(st, p);
    printf("%s\n", cas_preview_text(p, NULL));
    fflush(stdout);
    if (rc < 0 && rc != CAS_E_LIMIT) {
        snprintf(err, sizeof err, "%s: %s", o.args[0], cas_preview_message(p));
        rc = data_error(err);
    } else rc = 0;
    cas_stream_close(st);
    if (s) cas_store_close(s);
    cas_preview_free(p);
    return rc;
}

/* A JSON string: names from data.json may hold any character. */
static void json_str(const char *p) {
    putchar('"');
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* A folder's entries; NULL (with the message printed) on failure. */
static cas_file_entry *list_dir(cas_store *s, const char *dir, size_t *n, int quiet_missing) {
    cas_file_entry *e = NULL;
    char err[1024];
    int rc = cas_store_file_list(s, dir, &e, n, err, sizeof err);
    if (rc < 0 && !(quiet_missing && rc == CAS_E_NOTFOUND)) data_error(err);
    return rc < 0 ? NULL : e;
}

/* A task folder, a step's or a run's, as Metaflow names them (not "_meta", "data"). */
static int is_part(const cas_file_entry *e) {
    return e->is_dir && cas_name_check(e->name) == 0 && strcmp(e->name, "_meta") && strcmp(e->name, "data");
}

typedef struct run_info {
    char id[256];
    int64_t started; /* the earliest object of its _parameters task (what a run writes first); 0 unknown */
    int finished;    /* its end step has a task with a DONE marker */
} run_info;

/* The earliest mtime of the objects in the first task of dir (a step), or of a DONE marker. */
static int64_t step_probe(cas_store *s, const char *dir, int want_done) {
    char sub[1100];
    cas_file_entry *tasks, *files;
    size_t nt, nf, i, j;
    int64_t best = 0;
    if (!(tasks = list_dir(s, dir, &nt, 1))) return 0;
    for (i = 0; i < nt && !best; i++) {
        if (!is_part(&tasks[i])) continue;
        snprintf(sub, sizeof sub, "%s/%s", dir, tasks[i].name);
        if (!(files = list_dir(s, sub, &nf, 1))) continue;
        for (j = 0; j < nf; j++) {
            size_t l = strlen(files[j].name);
            if (files[j].is_dir) continue;
            if (want_done && l > 10 && !strcmp(files[j].name + l - 10, ".DONE.lock")) best = 1;
            if (!want_done && files[j].mtime > 0 && (!best || files[j].mtime < best)) best = files[j].mtime;
        }
        cas_store_free_buffer(s, files);
        if (!want_done) break;
    }
    cas_store_free_buffer(s, tasks);
    return best;
}

static int run_cmp(const void *a, const void *b) {
    const run_info *x = (const run_info *)a, *y = (const run_info *)b;
    if (x->started != y->started) return x->started > y->started ? -1 : 1;
    return strcmp(y->id, x->id);
}

/* A flow's runs, newest first. NULL on failure (printed). */
static run_info *flow_runs(cas_store *s, const char *flow, size_t *count) {
    cas_file_entry *e;
    run_info *runs;
    size_t n, i;
    char dir[1100];
    *count = 0;
    if (!(e = list_dir(s, flow, &n, 0))) return NULL;
    if (!(runs = (run_info *)calloc(n + 1, sizeof *runs))) {
        cas_store_free_buffer(s, e);
        data_error("out of memory");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        run_info *r = &runs[*count];
        if (!is_part(&e[i])) continue;
        snprintf(r->id, sizeof r->id, "%s", e[i].name);
        snprintf(dir, sizeof dir, "%s/%s/_parameters", flow, e[i].name);
        r->started = step_probe(s, dir, 0);
        snprintf(dir, sizeof dir, "%s/%s/end", flow, e[i].name);
        r->finished = step_probe(s, dir, 1) != 0;
        (*count)++;
    }
    cas_store_free_buffer(s, e);
    qsort(runs, *count, sizeof *runs, run_cmp);
    return runs;
}

static void when(int64_t t, char *buf, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(buf, cap, "?");
}

static int ls_flows(cas_store *s, const opts *o) {
    char *flows = NULL, err[1024];
    const char *f;
    size_t n, i;
    if (cas_store_flows(s, &flows, &n, err, sizeof err) < 0) return data_error(err);
    for (i = 0, f = flows; i < n; i++, f += strlen(f) + 1) {
        if (o->json) printf("{\"flow\": \"%s\"}\n", f);
        else printf("%s\n", f);
    }
    cas_store_free_buffer(s, flows);
    if (!n) return data_error("no Metaflow flows under this root");
    return 0;
}

static int ls_runs(cas_store *s, const opts *o, const char *flow) {
    size_t n, i;
    run_info *runs = flow_runs(s, flow, &n);
    char t[64];
    if (!runs) return EXIT_DATA;
    if (!o->json) printf("%-24s  %-20s  %s\n", "RUN", "STARTED", "FINISHED");
    for (i = 0; i < n; i++) {
        when(runs[i].started, t, sizeof t);
        if (o->json) {
            printf("{\"flow\": \"%s\", \"run\": \"%s\", \"pathspec\": \"%s/%s\", \"started\": ", flow, runs[i].id, flow,
                   runs[i].id);
            if (runs[i].started > 0) printf("\"%s\"", t);
            else printf("null");
            printf(", \"finished\": %s}\n", runs[i].finished ? "true" : "false");
        } else {
            printf("%-24s  %-20s  %s\n", runs[i].id, t, runs[i].finished ? "yes" : "no");
        }
    }
    free(runs);
    return 0;
}

/* The tasks (folders) of a step, or the steps of a run. */
static int ls_parts(cas_store *s, const opts *o, const char *dir, int steps) {
    cas_file_entry *e, *sub;
    size_t n, ns, i, j;
    char path[1100];
    if (!(e = list_dir(s, dir, &n, 0))) return EXIT_DATA;
    if (!o->json) printf(steps ? "%-32s  %s\n" : "%-24s  %-8s  %s\n", steps ? "STEP" : "TASK", steps ? "TASKS" : "ATTEMPT",
                         "DONE");
    for (i = 0; i < n; i++) {
        size_t count = 0;
        int attempt = -1;
        if (!is_part(&e[i])) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e[i].name);
        if ((sub = list_dir(s, path, &ns, 1)) != NULL) {
            if (steps) {
                for (j = 0; j < ns; j++) count += is_part(&sub[j]);
            } else { /* Metaflow's rule over the task folder's names */
                size_t len = 0;
                char *names;
                for (j = 0; j < ns; j++) len += strlen(sub[j].name) + 1;
                if ((names = (char *)malloc(len + 1)) != NULL) {
                    for (j = 0, len = 0; j < ns; j++) {
                        memcpy(names + len, sub[j].name, strlen(sub[j].name) + 1);
                        len += strlen(sub[j].name) + 1;
                    }
                    attempt = cas_task_pick_attempt(names, ns);
                    free(names);
                }
            }
            cas_store_free_buffer(s, sub);
        }
        if (o->json && steps)
            printf("{\"pathspec\": \"%s\", \"step\": \"%s\", \"tasks\": %lu}\n", path, e[i].name, (unsigned long)count);
        else if (o->json)
            printf("{\"pathspec\": \"%s\", \"task\": \"%s\", \"attempt\": %d, \"done\": %s}\n", path, e[i].name,
                   attempt, attempt >= 0 ? "true" : "false");
        else if (steps) printf("%-32s  %lu\n", e[i].name, (unsigned long)count);
        else if (attempt >= 0) printf("%-24s  %-8d  yes\n", e[i].name, attempt);
        else printf("%-24s  %-8s  no\n", e[i].name, "-");
    }
    cas_store_free_buffer(s, e);
    return 0;
}

static int ls_task(cas_store *s, const opts *o, const char *pathspec) {
    cas_task *t;
    char err[1024];
    size_t i, wname = 4;
    if (cas_task_open(s, pathspec, &t, err, sizeof err) < 0) return data_error(err);
    for (i = 0; i < cas_task_count(t); i++) {
        const char *name;
        cas_task_artifact(t, i, &name, NULL, NULL, NULL, NULL);
        if (strlen(name) > wname) wname = strlen(name);
    }
    if (!o->json) {
        printf("# %s, attempt %d\n", pathspec, cas_task_attempt(t));
        printf("%-*s  %-40s  %10s  %-16s  %s\n", (int)wname, "NAME", "KEY", "SIZE", "ENCODING", "FORMAT");
    }
    for (i = 0; i < cas_task_count(t); i++) {
        const char *name, *key, *enc, *fname;
        int64_t size;
        int fmt = 0, rc;
        char sz[32];
        cas_task_artifact(t, i, &name, &key, &size, &enc, NULL);
        if (size >= 0) snprintf(sz, sizeof sz, "%lld", (long long)size);
        else snprintf(sz, sizeof sz, "?");
        rc = cas_store_stat(s, cas_task_flow(t), key, &fmt, NULL, NULL, 0);
        fname = rc == CAS_E_NOTFOUND ? "missing" : rc < 0 ? "bad-sidecar" : cas_format_name(fmt);
        if (o->json) {
            printf("{\"pathspec\": \"%s\", \"attempt\": %d, \"name\": ", pathspec, cas_task_attempt(t));
            json_str(name);
            printf(", \"key\": \"%s\", \"size\": %s, \"encoding\": ", key, size >= 0 ? sz : "null");
            json_str(enc);
            printf(", \"format\": \"%s\"}\n", fname);
        } else {
            printf("%-*s  %-40s  %10s  %-16s  %s\n", (int)wname, name, key, sz, enc, fname);
        }
    }
    cas_task_close(t);
    return 0;
}

static int cmd_ls(int argc, char **argv) {
    opts o;
    cas_store *s;
    char spec[1100], *part[4];
    int rc, n = 0;
    if ((rc = parse(argc, argv, &o, "--root --json"))) return rc;
    if (o.help) {
        printf("usage: cas ls [FLOW[/RUN[/STEP[/TASK]]]] [--root ROOT] [--json]\n\n"
               "Lists a level of the datastore: its flows; a flow's runs, newest first (start time:\n"
               "when its _parameters task wrote; finished: its end step has a DONE task); a run's\n"
               "steps and their task counts; a step's tasks (the attempt Metaflow reads, done or\n"
               "not); a task's artifacts (name, key, size from data.json, encoding, the blob's\n"
               "format: v1 gzip, v2 LZ4, raw, legacy, or 'missing'). RUN may be 'latest', the\n"
               "newest run. --json prints one JSON object per row (NDJSON).\n");
        return 0;
    }
    if (o.nargs > 1) return usage_error("ls takes at most one FLOW/RUN/STEP/TASK%s", NULL);
    snprintf(spec, sizeof spec, "%s", o.nargs ? o.args[0] : "");
    if (o.nargs && (strlen(o.args[0]) >= sizeof spec - 300 || !*spec))
        return usage_error("'%s' is not FLOW[/RUN[/STEP[/TASK]]]", o.args[0]);
    if (*spec) {
        char *p = spec, *slash;
        while (p && n < 4) {
            part[n++] = p;
            if ((slash = strchr(p, '/')) != NULL) *slash = 0;
            p = slash ? slash + 1 : NULL;
            if (cas_name_check(part[n - 1]) < 0 || (p && n == 4))
                return usage_error("'%s' is not FLOW[/RUN[/STEP[/TASK]]]", o.args[0]);
        }
    }
    if ((rc = open_store(&o, &s))) return rc;
    if (n >= 2 && !strcmp(part[1], "latest")) { /* the newest run */
        size_t count;
        run_info *runs = flow_runs(s, part[0], &count);
        static char latest[256];
        if (!runs) rc = EXIT_DATA;
        else if (!count) rc = data_error("the flow has no runs");
        else snprintf(latest, sizeof latest, "%s", runs[0].id), part[1] = latest;
        free(runs);
    }
    if (!rc) {
        char path[1100];
        path[0] = 0;
        if (n >= 1) snprintf(path, sizeof path, "%s", part[0]);
        if (n >= 2) snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", part[1]);
        if (n >= 3) snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", part[2]);
        if (n >= 4) snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", part[3]);
        rc = n == 0 ? ls_flows(s, &o) : n == 1 ? ls_runs(s, &o, path) : n == 2 ? ls_parts(s, &o, path, 1)
           : n == 3 ? ls_parts(s, &o, path, 0) : ls_task(s, &o, path);
    }
    cas_store_close(s);
    return rc;
}

/* The key a blob file's name gives, if its name is one. */
static const char *file_key(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return cas_key_check(b, strlen(b), NULL) == CAS_OK ? b : NULL;
}

static int cmd_cat(int argc, char **argv) {
    opts o;
    cas_stream *st;
    char err[1024];
    const char *key = NULL;
    int rc;
    if ((rc = parse(argc, argv, &o, "--verify"))) return rc;
    if (o.help) {
        printf("usage: cas cat BLOBFILE [--verify]\n\n"
               "Decodes one blob file to stdout, by the rules Metaflow applies: its sidecar\n"
               "BLOBFILE_meta when present, else legacy gzip. --verify rehashes against the key\n"
               "the file is named after.\n");
        return 0;
    }
    if (o.nargs != 1) return usage_error("cat takes one BLOBFILE%s", NULL);
    if (o.verify && !(key = file_key(o.args[0])))
        return usage_error("--verify needs a file named after its key ('%s' is not)", o.args[0]);
    if (cas_stream_open_file(&st, o.args[0], key, 0, NULL, err, sizeof err) < 0) return data_error(err);
    rc = pump(st);
    cas_stream_close(st);
    return rc;
}

static int cmd_stat(int argc, char **argv) {
    opts o;
    cas_stream *st;
    char err[1024], mpath[PATH_MAX + 8];
    unsigned char head[4], buf[1 << 16];
    const char *key;
    uint64_t stored, decoded = 0;
    FILE *f;
    size_t hl = 0, got;
    int rc, fmt;
    if ((rc = parse(argc, argv, &o, ""))) return rc;
    if (o.help) {
        printf("usage: cas stat BLOBFILE\n\n"
               "Shows how a blob is stored: the format its sidecar names and the format its bytes\n"
               "are in, stored and decoded size, the ratio, and whether it hashes to its file name.\n");
        return 0;
    }
    if (o.nargs != 1) return usage_error("stat takes one BLOBFILE%s", NULL);
    key = file_key(o.args[0]);
    if ((f = fopen(o.args[0], "rb"))) {
        hl = fread(head, 1, 4, f);
        fclose(f);
    }
    if (cas_stream_open_file(&st, o.args[0], key, 0, NULL, err, sizeof err) < 0) return data_error(err);
    fmt = cas_stream_format(st);
    stored = cas_stream_stored_size(st);
    for (;;) {
        rc = cas_stream_read(st, buf, sizeof buf, &got);
        if (rc < 0 || !got) break;
        decoded += got;
    }
    snprintf(mpath, sizeof mpath, "%s_meta", o.args[0]);
    printf("file:     %s\n", o.args[0]);
    printf("sidecar:  %s\n", access(mpath, F_OK) == 0 ? mpath : "(none: legacy gzip)");
    printf("format:   %s (%s)\n", cas_format_name(fmt), cas_codec_name(cas_format_codec(fmt)));
    printf("bytes:    %s\n", cas_sniff_name(cas_sniff(head, hl)));
    printf("stored:   %llu bytes\n", (unsigned long long)stored);
    if (rc < 0) {
        printf("decoded:  error\n");
        fflush(stdout);
        rc = data_error(cas_stream_message(st));
        cas_stream_close(st);
        return rc;
    }
    printf("decoded:  %llu bytes\n", (unsigned long long)decoded);
    printf("ratio:    %.2fx\n", stored ? (double)decoded / (double)stored : 0.0);
    printf("key:      %s\n", key ? "ok (hashes to its file name)" : "(file name is not a key)");
    cas_stream_close(st);
    return 0;
}

/* mkdir -p: every missing folder of path (0777 less the umask, as Metaflow's os.makedirs). */
static int make_dirs(const char *path) {
    char p[PATH_MAX], msg[PATH_MAX + 100];
    size_t i, n = strlen(path);
    if (n >= sizeof p) return usage_error("'%s': path too long", path);
    memcpy(p, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        p[i] = 0;
        if (mkdir(p, 0777) < 0 && errno != EEXIST) {
            snprintf(msg, sizeof msg, "Cannot create the datastore root '%s': %s", path, strerror(errno));
            return data_error(msg);
        }
        p[i] = i < n ? '/' : 0;
    }
    return 0;
}

static int cmd_put(int argc, char **argv) {
    opts o;
    cas_store *s;
    char key[CAS_KEY_BUF], err[1024];
    int rc, fd = 0, stored = 0;
    if ((rc = parse(argc, argv, &o, "--root --flow --v1 --v2 --raw"))) return rc;
    if (o.help) {
        printf("usage: cas put --flow FLOW [--root ROOT] [--v1|--v2|--raw] [FILE]\n\n"
               "Stores FILE (or stdin) in FLOW's content-addressed store and prints its key.\n"
               "--v1 (default) writes gzip, readable by every Metaflow release; --v2 writes an LZ4\n"
               "frame (Metaflow PR #3090 readers only); --raw stores the bytes as they are.\n"
               "An existing key writes nothing. The write is atomic: on a local store temp files,\n"
               "then rename; on S3 one PUT with the metadata (If-None-Match: *), or a multipart\n"
               "upload that becomes visible only when complete (aborted on failure).\n");
        return 0;
    }
    if (!o.flow) return usage_error("put needs --flow FLOW%s", NULL);
    if (cas_name_check(o.flow) < 0) return usage_error("'%s' is not a valid flow name", o.flow);
    if (o.nargs > 1) return usage_error("put takes at most one FILE%s", NULL);
    if (o.root && !strstr(o.root, "://") && (rc = make_dirs(o.root))) return rc; /* a new store, as Metaflow's first save */
    if ((rc = open_store(&o, &s))) return rc;
    if (o.nargs == 1 && strcmp(o.args[0], "-") && (fd = open(o.args[0], O_RDONLY)) < 0) {
        snprintf(err, sizeof err, "cannot open '%s': %s", o.args[0], strerror(errno));
        cas_store_close(s);
        return data_error(err);
    }
    rc = cas_store_put_fd(s, o.flow, fd, o.format, key, &stored, err, sizeof err);
    if (fd) close(fd);
    cas_store_close(s);
    if (rc < 0) return data_error(err);
    printf("%s\n", key);
    return 0;
}

static int cmd_get(int argc, char **argv) {
    opts o;
    cas_store *s;
    cas_stream *st;
    char err[1024];
    int rc;
    if ((rc = parse(argc, argv, &o, "--root --flow --verify"))) return rc;
    if (o.help) {
        printf("usage: cas get --flow FLOW KEY [--root ROOT] [--verify]\n\n"
               "Writes the blob's decoded bytes to stdout, streaming. --verify rehashes them (always\n"
               "on an object store); bytes that do not hash to KEY end in exit 1.\n");
        return 0;
    }
    if (!o.flow || o.nargs != 1) return usage_error("get needs --flow FLOW and one KEY%s", NULL);
    if (cas_name_check(o.flow) < 0) return usage_error("'%s' is not a valid flow name", o.flow);
    if (cas_key_check(o.args[0], strlen(o.args[0]), NULL) < 0)
        return usage_error("'%s' is not a key (40 or 32 lowercase hex digits)", o.args[0]);
    if ((rc = open_store(&o, &s))) return rc;
    if (cas_stream_open(s, o.flow, o.args[0], &st, err, sizeof err) < 0) rc = data_error(err);
    else {
        rc = pump(st);
        cas_stream_close(st);
    }
    cas_store_close(s);
    return rc;
}

/* ---- walking a store: verify and migrate ---- */

static void progress(int show, size_t done, size_t total, const char *what) {
    int width = 30, fill;
    if (!show) return;
    fill = total ? (int)((double)done / (double)total * width) : width;
    fprintf(stderr, "\r%s [%.*s%*s] %lu/%lu", what, fill, "##############################", width - fill, "",
            (unsigned long)done, (unsigned long)total);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

typedef int (*blob_fn)(cas_store *s, const char *flow, const char *key, void *ctx, char *err, size_t cap);

/* Runs fn over every blob of the chosen flows (all when none is named): *total blobs,
 * *bad of them failed; *unlisted flows whose blobs could not be listed (said on stderr). */
static int walk(cas_store *s, const opts *o, const char *what, blob_fn fn, void *ctx, size_t *total, size_t *bad,
                size_t *unlisted) {
    char *flows = NULL, err[1024];
    size_t nf = 0, i, k, all = 0, done = 0;
    const char *f;
    int show = !o->quiet && isatty(2);
    char **keylists;
    size_t *counts;
    *total = *bad = *unlisted = 0;
    if (o->nargs) {
        size_t len = 0;
        for (i = 0; i < (size_t)o->nargs; i++) len += strlen(o->args[i]) + 1;
        flows = (char *)malloc(len);
        for (i = 0, len = 0; i < (size_t)o->nargs; i++) {
            if (cas_name_check(o->args[i]) < 0) {
                free(flows);
                return usage_error("'%s' is not a valid flow name", o->args[i]);
            }
            memcpy(flows + len, o->args[i], strlen(o->args[i]) + 1);
            len += strlen(o->args[i]) + 1;
        }
        nf = (size_t)o->nargs;
    } else if (cas_store_flows(s, &flows, &nf, err, sizeof err) < 0) {
        return data_error(err);
    }
    keylists = (char **)calloc(nf + 1, sizeof *keylists);
    counts = (size_t *)calloc(nf + 1, sizeof *counts);
    for (i = 0, f = flows; i < nf; i++, f += strlen(f) + 1) {
        if (cas_store_keys(s, f, &keylists[i], &counts[i], err, sizeof err) < 0) {
            fprintf(stderr, "%s: %s\n", prog, err);
            (*unlisted)++;
            continue;
        }
        all += counts[i];
    }
    for (i = 0, f = flows; i < nf; i++, f += strlen(f) + 1) {
        for (k = 0; k < counts[i]; k++) {
            const char *key = keylists[i] + k * CAS_KEY_BUF;
            err[0] = 0;
            if (fn(s, f, key, ctx, err, sizeof err) < 0) {
                if (show) fputc('\n', stderr);
                fprintf(stderr, "BAD %s\n", err);
                (*bad)++;
            }
            progress(show, ++done, all, what);
        }
        cas_store_free_buffer(s, keylists[i]);
    }
    free(keylists);
    free(counts);
    if (o->nargs) free(flows);
    else cas_store_free_buffer(s, flows);
    *total = all;
    return 0;
}

/* The end of a walk's summary line, and its exit status. */
static int summary_end(size_t unlisted, size_t bad) {
    if (unlisted) printf("; %lu flow%s could not be listed", (unsigned long)unlisted, unlisted == 1 ? "" : "s");
    printf("\n");
    return bad || unlisted ? EXIT_DATA : 0;
}

static int verify_one(cas_store *s, const char *flow, const char *key, void *ctx, char *err, size_t cap) {
    (void)ctx;
    return cas_store_verify(s, flow, key, NULL, err, cap);
}

static int cmd_verify(int argc, char **argv) {
    opts o;
    cas_store *s;
    size_t total, bad, unlisted;
    int rc;
    if ((rc = parse(argc, argv, &o, "--root --quiet"))) return rc;
    if (o.help) {
        printf("usage: cas verify [--root ROOT] [--quiet] [FLOW...]\n\n"
               "Decodes every blob of the named flows (all flows by default) and rehashes it\n"
               "against its key. Prints each bad blob with the reason and a summary; exits 1 if\n"
               "any blob is bad. A progress bar shows on a terminal; --quiet hides it.\n");
        return 0;
    }
    if ((rc = open_store(&o, &s))) return rc;
    rc = walk(s, &o, "verify", verify_one, NULL, &total, &bad, &unlisted);
    cas_store_close(s);
    if (rc) return rc;
    printf("verified %lu blobs: %lu ok, %lu bad", (unsigned long)total, (unsigned long)(total - bad),
           (unsigned long)bad);
    return summary_end(unlisted, bad);
}

typedef struct migrate_ctx {
    int format;
    size_t changed;
} migrate_ctx;

static int migrate_one(cas_store *s, const char *flow, const char *key, void *ctx, char *err, size_t cap) {
    migrate_ctx *m = (migrate_ctx *)ctx;
    int changed = 0, rc = cas_store_migrate(s, flow, key, m->format, &changed, err, cap);
    m->changed += (size_t)changed;
    return rc;
}

static int cmd_migrate(int argc, char **argv) {
    opts o;
    cas_store *s;
    size_t total, bad, unlisted;
    migrate_ctx m;
    int rc;
    if ((rc = parse(argc, argv, &o, "--root --quiet --to"))) return rc;
    if (o.help) {
        printf("usage: cas migrate --to v1|v2 [--root ROOT] [--quiet] [FLOW...]\n\n"
               "Re-encodes every blob of the named flows (all by default) as cas_version 1 (gzip,\n"
               "readable by every Metaflow) or 2 (LZ4 frame, Metaflow PR #3090). Keys do not change;\n"
               "raw blobs are left alone; every blob is verified before it is rewritten. Resumable:\n"
               "blobs already in the target format are skipped, and a blob left half-migrated by a\n"
               "crash (bytes and sidecar disagreeing) is repaired.\n");
        return 0;
    }
    if (!o.to || (strcmp(o.to, "v1") && strcmp(o.to, "v2"))) return usage_error("migrate needs --to v1 or --to v2%s", NULL);
    m.format = !strcmp(o.to, "v1") ? CAS_FORMAT_V1 : CAS_FORMAT_V2;
    m.changed = 0;
    if ((rc = open_store(&o, &s))) return rc;
    rc = walk(s, &o, "migrate", migrate_one, &m, &total, &bad, &unlisted);
    cas_store_close(s);
    if (rc) return rc;
    printf("migrated to %s: %lu blobs rewritten, %lu already there or raw, %lu failed", o.to,
           (unsigned long)m.changed, (unsigned long)(total - m.changed - bad), (unsigned long)bad);
    return summary_end(unlisted, bad);
}

static int cmd_gc(int argc, char **argv) {
    opts o;
    cas_store *s;
    char err[1024];
    uint64_t removed = 0;
    int rc, remote;
    if ((rc = parse(argc, argv, &o, "--root"))) return rc;
    if (o.help) {
        printf("usage: cas gc [--root ROOT]\n\n"
               "Removes what writers killed mid-put left behind. Local stores: temp files (their\n"
               "process is gone, or they are over an hour old). S3: multipart uploads begun over a\n"
               "day ago (CAS_S3_GC_AGE seconds) and never completed, whose parts S3 keeps and bills\n"
               "until they are aborted. Readers never see either; this only frees the space.\n");
        return 0;
    }
    if (o.nargs) return usage_error("gc takes no arguments%s", NULL);
    if ((rc = open_store(&o, &s))) return rc;
    rc = cas_store_gc(s, &removed, err, sizeof err);
    remote = strstr(cas_store_root(s), "://") != NULL;
    cas_store_close(s);
    if (rc < 0) return data_error(err);
    if (remote) printf("aborted %llu unfinished uploads\n", (unsigned long long)removed);
    else printf("removed %llu temp files\n", (unsigned long long)removed);
    return 0;
}

/* A command's exit status, or 1 if what it printed could not all be written (a full
 * disk, a closed pipe): output cut short is never a success. */
static int finish(int rc) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: cannot write to stdout: %s\n", prog, errno ? strerror(errno) : "write error");
        return rc ? rc : EXIT_DATA;
    }
    return rc;
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"artifact", cmd_artifact}, {"ls", cmd_ls},     {"cat", cmd_cat},         {"stat", cmd_stat},
                {"show", cmd_show},         {"put", cmd_put},   {"get", cmd_get},         {"verify", cmd_verify},
                {"migrate", cmd_migrate},   {"gc", cmd_gc}};
    size_t i;
#ifdef __linux__
    /* the process holds object-store credentials: no core dump, no ptrace by others of this user
     * (CAS_CORE_DUMPS=1 keeps them, to debug a crash) */
    if (!getenv("CAS_CORE_DUMPS")) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
    if (argc == 3 && !strcmp(argv[1], "help")) { /* cas help CMD: CMD --help */
        static char help[] = "--help";
        char *args[3];
        args[0] = argv[2], args[1] = help, args[2] = NULL;
        for (i = 0; i < sizeof cmds / sizeof *cmds; i++)
            if (!strcmp(args[0], cmds[i].name)) return finish(cmds[i].fn(2, args));
        return usage_error("unknown command '%s'", args[0]);
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : finish(0);
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("cas %s\n", cas_version_string());
        return finish(0);
    }
    for (i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(argv[1], cmds[i].name)) return finish(cmds[i].fn(argc - 1, argv + 1));
    return usage_error("unknown command '%s'", argv[1]);
}
