/* cas - read, write, verify and migrate Metaflow artifact stores with cas.h.
 * Exit status: 0 success, 1 data error (one line on stderr), 2 usage error. */
#define _POSIX_C_SOURCE 200809L /* getcwd, isatty, PATH_MAX under -std=c99 */
#define CAS_EXPERIMENTAL        /* cas_store_delete, for gc */
#include "../cas_pickle.h"      /* includes cas.h */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
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
    "  fsck [FLOW[/RUN[/STEP[/TASK]]]] [--root ROOT] [--json] [-j N]  check every artifact every\n"
    "                                                   data.json names; DONE markers; unreferenced blobs\n"
    "  gc [--root ROOT]                                  remove what crashed writers left behind\n"
    "  gc --unreferenced [FLOW...] [--grace 1d] [--dry-run] [--json]  remove blobs no run references\n"
    "  cp SRC_ROOT DST_ROOT FLOW[/RUN[/STEP[/TASK]]] [--to v1|v2]  copy runs and the blobs they use\n"
    "  prune FLOW (--keep-last N | --before DATE | RUN...) [--dry-run] [--unfinished]  remove runs'\n"
    "                                                   metadata, so gc --unreferenced frees their blobs\n"
    "  version                                          print the library version\n"
    "\n"
    "The root is the datastore: a directory (the one holding Flow/ folders), an S3 URL,\n"
    "s3://bucket/prefix (Metaflow's METAFLOW_DATASTORE_SYSROOT_S3), or an Azure one,\n"
    "azure://container/prefix (METAFLOW_DATASTORE_SYSROOT_AZURE). By default it is the root\n"
    "Metaflow would use: with METAFLOW_DEFAULT_DATASTORE=s3 or azure (environment or\n"
    "~/.metaflowconfig/config.json), METAFLOW_DATASTORE_SYSROOT_S3 or _AZURE (any other\n"
    "name: METAFLOW_DATASTORE_SYSROOT_<NAME>, for a backend CAS_BACKENDS loads); else\n"
    "$METAFLOW_DATASTORE_SYSROOT_LOCAL/.metaflow, else the nearest .metaflow above the working\n"
    "directory. 'cas COMMAND --help' tells more.\n";

static const char usage_settings[] = /* apart: C99 compilers need take no longer string */
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
    "Azure settings (Metaflow's and the Azure SDKs'); the tuning above applies too, named\n"
    "CAS_AZURE_* (CAS_AZURE_CONNECTIONS...; the CAS_S3_* names are taken when those are unset):\n"
    "  METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT   https://ACCOUNT.blob.core.windows.net/ (a SAS\n"
    "      in its query is used), else the connection string's, else from AZURE_STORAGE_ACCOUNT\n"
    "  AZURE_STORAGE_KEY, AZURE_STORAGE_CONNECTION_STRING (AccountName, AccountKey, BlobEndpoint,\n"
    "      SharedAccessSignature), AZURE_STORAGE_SAS_TOKEN   a shared key or a SAS token, else\n"
    "      Microsoft Entra ID: AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET, or\n"
    "      AZURE_FEDERATED_TOKEN_FILE (workload identity), or a managed identity\n"
    "  REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE                CA certificates for TLS\n"
    "\n"
    "Backends of your own (cas_backend_register; examples/flat_backend.c):\n"
    "  CAS_BACKENDS   shared objects to load, ':' between them; each exports\n"
    "      int cas_backend_plugin(int (*add)(const char *scheme, cas_backend_opener open)),\n"
    "      which registers its schemes (a scheme of its own, or s3/azure to replace cas's)\n";

typedef struct opts {
    const char *root, *flow, *to;
    int verify, quiet, verbose, format, help, json, dry_run, unfinished, unreferenced, jobs;
    const char *grace, *keep_last, *before;
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
enum {
    O_ROOT = 256,
    O_FLOW,
    O_TO,
    O_MAX_BYTES,
    O_ITEMS,
    O_DEPTH,
    O_MAX_READ,
    O_JSON,
    O_VERIFY,
    O_V1,
    O_V2,
    O_RAW,
    O_DRY_RUN,
    O_UNFINISHED,
    O_UNREFERENCED,
    O_GRACE,
    O_KEEP_LAST,
    O_BEFORE
};
static const struct option options[] = {{"help", no_argument, NULL, 'h'},
                                        {"quiet", no_argument, NULL, 'q'},
                                        {"verbose", no_argument, NULL, 'v'},
                                        {"root", required_argument, NULL, O_ROOT},
                                        {"flow", required_argument, NULL, O_FLOW},
                                        {"to", required_argument, NULL, O_TO},
                                        {"max-bytes", required_argument, NULL, O_MAX_BYTES},
                                        {"items", required_argument, NULL, O_ITEMS},
                                        {"depth", required_argument, NULL, O_DEPTH},
                                        {"max-read", required_argument, NULL, O_MAX_READ},
                                        {"json", no_argument, NULL, O_JSON},
                                        {"verify", no_argument, NULL, O_VERIFY},
                                        {"v1", no_argument, NULL, O_V1},
                                        {"v2", no_argument, NULL, O_V2},
                                        {"raw", no_argument, NULL, O_RAW},
                                        {"jobs", required_argument, NULL, 'j'},
                                        {"dry-run", no_argument, NULL, O_DRY_RUN},
                                        {"unfinished", no_argument, NULL, O_UNFINISHED},
                                        {"unreferenced", no_argument, NULL, O_UNREFERENCED},
                                        {"grace", required_argument, NULL, O_GRACE},
                                        {"keep-last", required_argument, NULL, O_KEEP_LAST},
                                        {"before", required_argument, NULL, O_BEFORE},
                                        {NULL, 0, NULL, 0}};

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
    while ((c = getopt_long(argc, argv, ":hqvj:", options, &li)) != -1) {
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
        case O_MAX_BYTES:
        case O_ITEMS:
        case O_DEPTH:
        case O_MAX_READ: o->limit[c - O_MAX_BYTES] = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_VERIFY: o->verify = 1; break;
        case O_DRY_RUN: o->dry_run = 1; break;
        case O_UNFINISHED: o->unfinished = 1; break;
        case O_UNREFERENCED: o->unreferenced = 1; break;
        case O_GRACE: o->grace = optarg; break;
        case O_KEEP_LAST: o->keep_last = optarg; break;
        case O_BEFORE: o->before = optarg; break;
        case 'j': {
            char *end;
            long j = strtol(optarg, &end, 10);
            if (*end || end == optarg || j < 1 || j > 64) return usage_error("-j takes 1 to 64, not '%s'", optarg);
            o->jobs = (int)j;
            break;
        }
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

/* The flows a command covers: those named, else every flow of the store ("a\0b\0"). */
static char *flows_of(cas_store *s, const opts *o, size_t *n, int *rc) {
    char *flows = NULL, err[1024];
    size_t len = 0, i;
    *n = 0, *rc = 0;
    if (o->nargs) {
        for (i = 0; i < (size_t)o->nargs; i++) {
            if (cas_name_check(o->args[i]) < 0) {
                *rc = usage_error("'%s' is not a valid flow name", o->args[i]);
                return NULL;
            }
            len += strlen(o->args[i]) + 1;
        }
        if (!(flows = (char *)malloc(len))) {
            *rc = data_error("out of memory");
            return NULL;
        }
        for (i = 0, len = 0; i < (size_t)o->nargs; i++, (*n)++) {
            memcpy(flows + len, o->args[i], strlen(o->args[i]) + 1);
            len += strlen(o->args[i]) + 1;
        }
        return flows;
    }
    if (cas_store_flows(s, &flows, n, err, sizeof err) < 0) {
        *rc = data_error(err);
        return NULL;
    }
    if (!*n) {
        snprintf(err, sizeof err, "no Metaflow datastore under '%s' (no flow folder with a data folder)",
                 cas_store_root(s));
        cas_store_free_buffer(s, flows);
        *rc = data_error(err);
        return NULL;
    }
    len = 0;
    for (i = 0; i < *n; i++) len += strlen(flows + len) + 1;
    {
        char *copy = (char *)malloc(len); /* one owner, whichever way the list came */
        if (copy) memcpy(copy, flows, len);
        cas_store_free_buffer(s, flows);
        if (!copy) *rc = data_error("out of memory");
        return copy;
    }
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

static int cmd_artifact(opts o) {
    cas_store *s;
    cas_stream *st;
    int64_t size;
    int rc;
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
static int is_part(const cas_file_entry *e) { return e->is_dir && cas_part_check(e->name) == CAS_OK; }

/* A flow's runs, newest first (cas_store_runs); NULL on failure (printed). */
static cas_run_info *flow_runs(cas_store *s, const char *flow, size_t *count) {
    cas_run_info *runs;
    char err[1024];
    if (cas_store_runs(s, flow, &runs, count, err, sizeof err) < 0) {
        data_error(err);
        return NULL;
    }
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
    cas_run_info *runs = flow_runs(s, flow, &n);
    char t[64];
    if (!runs) return EXIT_DATA;
    if (!o->json) printf("%-24s  %-20s  %-8s  %-12s  %s\n", "RUN", "STARTED", "FINISHED", "USER", "TAGS");
    for (i = 0; i < n; i++) {
        when(runs[i].started, t, sizeof t);
        if (o->json) {
            printf("{\"flow\": \"%s\", \"run\": \"%s\", \"pathspec\": \"%s/%s\", \"started\": ", flow, runs[i].id, flow,
                   runs[i].id);
            if (runs[i].started > 0) printf("\"%s\"", t);
            else printf("null");
            printf(", \"finished\": %s, \"user\": ", runs[i].finished ? "true" : "false");
            if (*runs[i].user) json_str(runs[i].user);
            else printf("null");
            printf(", \"tags\": %s, \"system_tags\": %s}\n", *runs[i].tags ? runs[i].tags : "[]",
                   *runs[i].system_tags ? runs[i].system_tags : "[]");
        } else {
            printf("%-24s  %-20s  %-8s  %-12s  %s\n", runs[i].id, t, runs[i].finished ? "yes" : "no",
                   *runs[i].user ? runs[i].user : "-",
                   *runs[i].tags && strcmp(runs[i].tags, "[]") ? runs[i].tags : "-");
        }
    }
    cas_store_free_buffer(s, runs);
    return 0;
}

/* The tasks (folders) of a step, or the steps of a run. */
static int ls_parts(cas_store *s, const opts *o, const char *dir, int steps) {
    cas_file_entry *e, *sub;
    size_t n, ns, i, j;
    char path[1100];
    if (!(e = list_dir(s, dir, &n, 0))) return EXIT_DATA;
    if (!o->json)
        printf(steps ? "%-32s  %s\n" : "%-24s  %-8s  %s\n", steps ? "STEP" : "TASK", steps ? "TASKS" : "ATTEMPT",
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

/* FLOW[/RUN[/STEP[/TASK]]] split in place (spec) into parts: their count, or -1. */
static int split_spec(const char *arg, char *spec, size_t cap, char **part) {
    char *p = spec, *slash;
    int n = 0;
    if (!*arg || strlen(arg) >= cap - 300) return -1;
    snprintf(spec, cap, "%s", arg);
    while (p && n < 4) {
        part[n++] = p;
        if ((slash = strchr(p, '/')) != NULL) *slash = 0;
        p = slash ? slash + 1 : NULL;
        if (cas_name_check(part[n - 1]) < 0 || (p && n == 4)) return -1;
    }
    return n;
}

/* The parts joined into path, RUN 'latest' standing for the flow's newest run. */
static int resolve_spec(cas_store *s, char **part, int n, char *path, size_t cap) {
    static char latest[256];
    int i;
    if (n >= 2 && !strcmp(part[1], "latest")) {
        size_t count;
        int rc = 0;
        cas_run_info *runs = flow_runs(s, part[0], &count);
        if (!runs) rc = EXIT_DATA;
        else if (!count) rc = data_error("the flow has no runs");
        else snprintf(latest, sizeof latest, "%s", runs[0].id), part[1] = latest;
        if (runs) cas_store_free_buffer(s, runs);
        if (rc) return rc;
    }
    path[0] = 0;
    for (i = 0; i < n; i++) snprintf(path + strlen(path), cap - strlen(path), "%s%s", i ? "/" : "", part[i]);
    return 0;
}

static int cmd_ls(opts o) {
    cas_store *s;
    char spec[1100], *part[4], path[1100];
    int rc, n = 0;
    if (o.nargs > 1) return usage_error("ls takes at most one FLOW/RUN/STEP/TASK%s", NULL);
    if (o.nargs && (n = split_spec(o.args[0], spec, sizeof spec, part)) < 0)
        return usage_error("'%s' is not FLOW[/RUN[/STEP[/TASK]]]", o.args[0]);
    if ((rc = open_store(&o, &s))) return rc;
    if (!(rc = resolve_spec(s, part, n, path, sizeof path)))
        rc = n == 0   ? ls_flows(s, &o)
             : n == 1 ? ls_runs(s, &o, path)
             : n == 2 ? ls_parts(s, &o, path, 1)
             : n == 3 ? ls_parts(s, &o, path, 0)
                      : ls_task(s, &o, path);
    cas_store_close(s);
    return rc;
}

/* A preview with the command's limits (--items, --depth, --max-bytes, --max-read, --json). */
static int new_preview(const opts *o, cas_preview **p) {
    static const int params[4] = {CAS_PREVIEW_MAX_OUTPUT, CAS_PREVIEW_MAX_ITEMS, CAS_PREVIEW_MAX_DEPTH,
                                  CAS_PREVIEW_MAX_READ};
    static const char *const names[4] = {"--max-bytes", "--items", "--depth", "--max-read"};
    char err[300];
    int i;
    if (cas_preview_create(p, NULL) < 0) return data_error("out of memory");
    for (i = 0; i < 4; i++) {
        char *end;
        long long v;
        if (!o->limit[i]) continue;
        errno = 0;
        v = strtoll(o->limit[i], &end, 10);
        if (end == o->limit[i] || *end || errno || cas_preview_set_param(*p, params[i], v) < 0) {
            cas_preview_free(*p);
            snprintf(err, sizeof err, "%s %.100s: not a number in range", names[i], o->limit[i]);
            return usage_error("%s", err);
        }
    }
    if (o->json) cas_preview_set_param(*p, CAS_PREVIEW_JSON, 1);
    return 0;
}

/* Every artifact of a task: with --json a row each ({"pathspec", "name", "key", "size",
 * "encoding", "preview"}; a failure adds "error" beside what came before it), else a
 * "NAME: preview" block each. Exit 1 if any failed. */
static int show_task(const opts *o, const char *pathspec) {
    cas_store *s;
    cas_task *t;
    char err[1024];
    size_t i;
    int rc, failed = 0;
    if ((rc = open_store(o, &s))) return rc;
    if (cas_task_open(s, pathspec, &t, err, sizeof err) < 0) {
        cas_store_close(s);
        return data_error(err);
    }
    for (i = 0; i < cas_task_count(t) && !rc; i++) {
        const char *name, *key, *enc;
        int64_t size;
        cas_preview *p;
        cas_task_artifact(t, i, &name, &key, &size, &enc, NULL);
        if ((rc = new_preview(o, &p))) break;
        err[0] = 0;
        rc = enc && *enc && !cas_encoding_is_pickle(enc)
                 ? cas_store_preview_encoded(s, cas_task_flow(t), key, enc, size, p, err, sizeof err)
                 : cas_store_preview(s, cas_task_flow(t), key, p, err, sizeof err);
        if (rc < 0 && rc != CAS_E_LIMIT) failed = 1;
        if (o->json) {
            const char *text = cas_preview_text(p, NULL);
            printf("{\"pathspec\": \"%s\", \"name\": ", pathspec);
            json_str(name);
            printf(", \"key\": \"%s\", \"size\": %lld, \"encoding\": ", key, (long long)size);
            json_str(enc ? enc : "");
            printf(", \"preview\": %s", *text ? text : "null");
            if (rc < 0 && rc != CAS_E_LIMIT) {
                printf(", \"error\": ");
                json_str(err[0] ? err : cas_preview_message(p));
            }
            printf("}\n");
        } else {
            printf("%s: %s\n", name, cas_preview_text(p, NULL));
            if (rc < 0 && rc != CAS_E_LIMIT)
                fprintf(stderr, "%s: %s/%s: %s\n", prog, pathspec, name, err[0] ? err : cas_preview_message(p));
        }
        cas_preview_free(p);
        rc = 0;
    }
    cas_task_close(t);
    cas_store_close(s);
    return rc ? rc : failed ? EXIT_DATA : 0;
}

static int cmd_show(opts o) {
    cas_store *s = NULL;
    cas_stream *st;
    cas_preview *p;
    struct stat sb;
    char err[1024], enc[256] = "";
    int64_t size = -1;
    int rc;
    if (o.nargs != 1) return usage_error("show takes one FLOW/RUN/STEP/TASK[/NAME] or BLOBFILE%s", NULL);
    if (stat(o.args[0], &sb) < 0) { /* not a file: a task names 4 parts, an artifact 5 */
        char spec[1100], *part[4], path[1100];
        int n;
        if (o.args[0][0] == '/' || o.args[0][0] == '.') {
            snprintf(err, sizeof err, "Cannot open '%.900s': %s", o.args[0], strerror(errno));
            return data_error(err);
        }
        if ((n = split_spec(o.args[0], spec, sizeof spec, part)) == 4) {
            if ((rc = new_preview(&o, &p))) return rc; /* the limits are checked before the store opens */
            cas_preview_free(p);
            if ((rc = open_store(&o, &s))) return rc;
            rc = resolve_spec(s, part, n, path, sizeof path);
            cas_store_close(s);
            return rc ? rc : show_task(&o, path);
        }
    }
    if ((rc = new_preview(&o, &p))) return rc;
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

/* The key a blob file's name gives, if its name is one. */
static const char *file_key(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return cas_key_check(b, strlen(b), NULL) == CAS_OK ? b : NULL;
}

static int cmd_cat(opts o) {
    cas_stream *st;
    char err[1024];
    const char *key = NULL;
    int rc;
    if (o.nargs != 1) return usage_error("cat takes one BLOBFILE%s", NULL);
    if (o.verify && !(key = file_key(o.args[0])))
        return usage_error("--verify needs a file named after its key ('%s' is not)", o.args[0]);
    if (cas_stream_open_file(&st, o.args[0], key, 0, NULL, err, sizeof err) < 0) return data_error(err);
    rc = pump(st);
    cas_stream_close(st);
    return rc;
}

/* cas_sniff's verdict as a --json token (its name is prose, for messages). */
static const char *sniff_token(int sniff) {
    switch (sniff) {
    case CAS_SNIFF_GZIP: return "gzip";
    case CAS_SNIFF_LZ4: return "lz4";
    case CAS_SNIFF_ZSTD: return "zstd";
    case CAS_SNIFF_EMPTY: return "empty";
    case CAS_SNIFF_SHORT: return "short";
    default: return "other";
    }
}

static int cmd_stat(opts o) {
    cas_stream *st;
    char err[1024], mpath[PATH_MAX + 8];
    unsigned char head[4], buf[1 << 16];
    const char *key;
    uint64_t stored, decoded = 0;
    FILE *f;
    size_t hl = 0, got;
    int rc, fmt;
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
    if (o.json) { /* one row: {"file", "sidecar", "format", "bytes", "stored", "decoded", "ratio", "key_ok"} */
        printf("{\"file\": ");
        json_str(o.args[0]);
        printf(", \"sidecar\": %s, \"format\": \"%s\", \"bytes\": \"%s\", \"stored\": %llu, \"decoded\": ",
               access(mpath, F_OK) == 0 ? "true" : "false", cas_format_name(fmt), sniff_token(cas_sniff(head, hl)),
               (unsigned long long)stored);
        if (rc < 0) printf("null, \"ratio\": null, \"error\": "), json_str(cas_stream_message(st));
        else
            printf("%llu, \"ratio\": %.4f", (unsigned long long)decoded,
                   stored ? (double)decoded / (double)stored : 0.0);
        printf(", \"key_ok\": %s}\n", key && rc >= 0 ? "true" : "false");
        rc = rc < 0 ? EXIT_DATA : 0;
        cas_stream_close(st);
        return rc;
    }
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

static int cmd_put(opts o) {
    cas_store *s;
    char key[CAS_KEY_BUF], err[1024];
    int rc, fd = 0, stored = 0;
    if (!o.flow) return usage_error("put needs --flow FLOW%s", NULL);
    if (cas_name_check(o.flow) < 0) return usage_error("'%s' is not a valid flow name", o.flow);
    if (o.nargs > 1) return usage_error("put takes at most one FILE%s", NULL);
    if (o.root && !strstr(o.root, "://") && (rc = make_dirs(o.root)))
        return rc; /* a new store, as Metaflow's first save */
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
    if (o.json) printf("{\"flow\": \"%s\", \"key\": \"%s\", \"stored\": %s}\n", o.flow, key, stored ? "true" : "false");
    else printf("%s\n", key);
    return 0;
}

static int cmd_get(opts o) {
    cas_store *s;
    cas_stream *st;
    char err[1024];
    int rc;
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

/* ---- running many object operations side by side ---- */

typedef struct par_job {
    size_t next, n;
    pthread_mutex_t mu;
    void (*fn)(void *ctx, size_t i);
    void *ctx;
} par_job;

static void *par_worker(void *arg) {
    par_job *j = (par_job *)arg;
    for (;;) {
        size_t i;
        pthread_mutex_lock(&j->mu);
        i = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->n) return NULL;
        j->fn(j->ctx, i);
    }
}

/* fn(ctx, i) for every i below n, on `threads` threads (the calling one among them):
 * on an object store their requests overlap. fn locks what it shares. */
static void par_run(size_t n, int threads, void (*fn)(void *ctx, size_t i), void *ctx) {
    pthread_t th[64];
    par_job j;
    int k, started = 0;
    j.next = 0, j.n = n, j.fn = fn, j.ctx = ctx;
    pthread_mutex_init(&j.mu, NULL);
    for (k = 1; k < threads && k < 64 && (size_t)k < n; k++)
        if (pthread_create(&th[started], NULL, par_worker, &j) == 0) started++;
    par_worker(&j);
    for (k = 0; k < started; k++) pthread_join(th[k], NULL);
    pthread_mutex_destroy(&j.mu);
}

/* ---- walking a store: verify and migrate ---- */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* bytes, rate and ETA on a terminal's stderr */
static void progress_bytes(int show, size_t done, size_t total, uint64_t bytes, uint64_t all, int64_t t0,
                           const char *what) {
    double secs, rate;
    if (!show) return;
    secs = (double)(now_ms() - t0) / 1000.0;
    rate = secs > 0 ? (double)bytes / secs : 0;
    fprintf(stderr, "\r%s %lu/%lu blobs, %.1f/%.1f MB, %.1f MB/s", what, (unsigned long)done, (unsigned long)total,
            (double)bytes / 1e6, (double)all / 1e6, rate / 1e6);
    if (rate > 0 && all > bytes) fprintf(stderr, ", %.0f s left   ", (double)(all - bytes) / rate);
    else fprintf(stderr, "              ");
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

/* "ab/KEY" in a listing of FLOW/data: the key, or NULL; *sidecar when it is a local
 * store's "ab/KEY_meta" (listed only once its blob is gone). */
static const char *entry_key(const char *name, int *sidecar) {
    size_t kl = strlen(name) > 3 ? strlen(name) - 3 : 0;
    *sidecar = kl > 5 && !strcmp(name + strlen(name) - 5, "_meta");
    if (*sidecar) kl -= 5;
    if (kl < 2 || name[2] != '/' || memcmp(name, name + 3, 2) || cas_key_check(name + 3, kl, NULL) != CAS_OK)
        return NULL;
    return name + 3;
}

typedef int (*blob_fn)(cas_store *s, const char *flow, const char *key, void *ctx, int *changed, char *err, size_t cap);

typedef struct walker {
    const char *what; /* "verify", "migrate" */
    blob_fn one;
    void *ctx;
    int batch; /* read small blobs many at a time first (verify): many requests in flight */
    size_t total, bad, unlisted, changed;
} walker;

#define WALK_BATCH 16
#define WALK_BATCH_STORED (4u << 20)  /* larger stored blobs are read alone, streaming */
#define WALK_BATCH_DECODED (32 << 20) /* a batch item decoding to more is read again alone */

static void walk_report(const opts *o, walker *w, const char *flow, const char *key, int rc, int changed,
                        const char *err, int show) {
    if (rc < 0) w->bad++;
    if (changed > 0) w->changed++;
    if (o->json) {
        printf("{\"flow\": \"%s\", \"key\": \"%s\", \"ok\": %s", flow, key, rc < 0 ? "false" : "true");
        if (changed >= 0) printf(", \"changed\": %s", changed ? "true" : "false");
        if (rc < 0) {
            printf(", \"error\": ");
            json_str(err);
        }
        printf("}\n");
    } else if (rc < 0) {
        if (show) fputc('\n', stderr);
        fprintf(stderr, "BAD %s\n", err);
    }
}

/* Reads n blobs in one batch (many requests in flight on an object store, `threads`
 * decoding) under a decoded limit, only to learn which read clean: ok[k] is 1 and
 * lens[k] the decoded size of those; their bytes are dropped. The others (failed, over
 * the limit, or never reached) are for the caller to read alone, for their words. */
#define PROBE_MAX 64

static void batch_probe(cas_store *s, const char *flow, size_t n, const char *const *keys, int threads, int64_t limit,
                        int *ok, size_t *lens) {
    void *outs[PROBE_MAX];
    int status[PROBE_MAX];
    char err[1024];
    size_t k;
    for (k = 0; k < n; k++) status[k] = CAS_E_IO, outs[k] = NULL, lens[k] = 0;
    cas_store_set_param(s, CAS_PARAM_LIMIT, limit);
    cas_store_get_batch(s, flow, n, keys, outs, lens, status, threads, err, sizeof err);
    cas_store_set_param(s, CAS_PARAM_LIMIT, 0);
    for (k = 0; k < n; k++) {
        if (outs[k]) cas_store_free_buffer(s, outs[k]);
        ok[k] = status[k] >= 0;
    }
}

/* A run of blobs w->one takes alone, side by side (-j N threads; 8 by default: on an
 * object store each is a few requests), reported afterwards in listing order. */
#define WALK_CHUNK 64

typedef struct walk_chunk {
    cas_store *s;
    walker *w;
    const char *flow;
    const char *keys[WALK_CHUNK];
    int rc[WALK_CHUNK], changed[WALK_CHUNK];
    char err[WALK_CHUNK][1024];
} walk_chunk;

static void walk_chunk_one(void *ctx, size_t i) {
    walk_chunk *c = (walk_chunk *)ctx;
    c->changed[i] = -1, c->err[i][0] = 0;
    c->rc[i] = c->w->one(c->s, c->flow, c->keys[i], c->w->ctx, &c->changed[i], c->err[i], sizeof c->err[i]);
}

/* Runs w->one over every blob of the chosen flows (all when none is named), listed
 * from each flow's data folder in one paged listing; with w->batch, small blobs are
 * read WALK_BATCH at a time first and only those that fail are read again alone
 * (for the verdict and its words). Progress: stored bytes, rate, ETA. */
static int walk(cas_store *s, const opts *o, walker *w) {
    char *flows, err[1024];
    size_t nf = 0, i, k, done = 0;
    const char *f;
    int show = !o->quiet && !o->json && isatty(2), rc;
    cas_file_entry **lists;
    size_t *counts;
    uint64_t all = 0, bytes = 0;
    int64_t t0 = now_ms();
    walk_chunk *chunk;
    if (!(flows = flows_of(s, o, &nf, &rc))) return rc;
    lists = (cas_file_entry **)calloc(nf + 1, sizeof *lists);
    counts = (size_t *)calloc(nf + 1, sizeof *counts);
    chunk = (walk_chunk *)malloc(sizeof *chunk);
    if (!lists || !counts || !chunk) {
        free(lists), free(counts), free(chunk), free(flows);
        return data_error("out of memory");
    }
    chunk->s = s, chunk->w = w;
    for (i = 0, f = flows; i < nf; i++, f += strlen(f) + 1) {
        if (cas_store_blob_list(s, f, &lists[i], &counts[i], err, sizeof err) < 0) {
            fprintf(stderr, "%s: %s\n", prog, err);
            w->unlisted++;
            continue;
        }
        for (k = 0; k < counts[i]; k++) {
            int sc;
            if (entry_key(lists[i][k].name, &sc) && !sc) w->total++, all += lists[i][k].size;
        }
    }
    for (i = 0, f = flows; i < nf; i++, f += strlen(f) + 1) {
        const cas_file_entry *e = lists[i];
        chunk->flow = f;
        for (k = 0; k < counts[i];) {
            const char *keys[WALK_BATCH];
            size_t lens[WALK_BATCH], nb = 0, j;
            int ok[WALK_BATCH], sc;
            if (w->batch) /* a run of small blobs: one batch read */
                for (; k < counts[i] && nb < WALK_BATCH; k++) {
                    const char *bk = entry_key(e[k].name, &sc);
                    if (!bk || sc) continue;
                    if (e[k].size > WALK_BATCH_STORED) break;
                    keys[nb++] = bk, bytes += e[k].size;
                }
            if (nb) {
                batch_probe(s, f, nb, keys, o->jobs, WALK_BATCH_DECODED, ok, lens);
                for (j = 0; j < nb; j++) {
                    int changed = -1;
                    err[0] = 0;
                    rc = ok[j] ? 0 : w->one(s, f, keys[j], w->ctx, &changed, err, sizeof err);
                    walk_report(o, w, f, keys[j], rc, changed, err, show);
                }
                done += nb;
            } else { /* blobs taken alone (large ones, or a walk without batches), side by side */
                for (; k < counts[i] && nb < WALK_CHUNK; k++) {
                    const char *bk = entry_key(e[k].name, &sc);
                    if (!bk || sc) continue;
                    if (w->batch && nb && e[k].size <= WALK_BATCH_STORED) break; /* small: the next batch's */
                    chunk->keys[nb++] = bk, bytes += e[k].size;
                }
                par_run(nb, o->jobs ? o->jobs : 8, walk_chunk_one, chunk);
                for (j = 0; j < nb; j++)
                    walk_report(o, w, f, chunk->keys[j], chunk->rc[j], chunk->changed[j], chunk->err[j], show);
                done += nb;
            }
            if (nb) progress_bytes(show, done, w->total, bytes, all, t0, w->what);
        }
        if (lists[i]) cas_store_free_buffer(s, lists[i]);
    }
    free(chunk);
    free(lists);
    free(counts);
    free(flows);
    return 0;
}

/* A walk's summary (a line, or with --json its last row) and its exit status. */
static int walk_summary(const opts *o, const walker *w, const char *to) {
    if (o->json) {
        printf("{\"summary\": true, \"command\": \"%s\", \"blobs\": %lu, \"ok\": %lu, \"bad\": %lu, ", w->what,
               (unsigned long)w->total, (unsigned long)(w->total - w->bad), (unsigned long)w->bad);
        if (to) printf("\"to\": \"%s\", \"rewritten\": %lu, ", to, (unsigned long)w->changed);
        printf("\"unlisted_flows\": %lu}\n", (unsigned long)w->unlisted);
    } else {
        if (to)
            printf("migrated to %s: %lu blobs rewritten, %lu already there or raw, %lu failed", to,
                   (unsigned long)w->changed, (unsigned long)(w->total - w->changed - w->bad), (unsigned long)w->bad);
        else
            printf("verified %lu blobs: %lu ok, %lu bad", (unsigned long)w->total, (unsigned long)(w->total - w->bad),
                   (unsigned long)w->bad);
        if (w->unlisted)
            printf("; %lu flow%s could not be listed", (unsigned long)w->unlisted, w->unlisted == 1 ? "" : "s");
        printf("\n");
    }
    return w->bad || w->unlisted ? EXIT_DATA : 0;
}

static int verify_one(cas_store *s, const char *flow, const char *key, void *ctx, int *changed, char *err, size_t cap) {
    (void)ctx, (void)changed;
    return cas_store_verify(s, flow, key, NULL, err, cap);
}

static int cmd_verify(opts o) {
    cas_store *s;
    walker w;
    int rc;
    memset(&w, 0, sizeof w);
    w.what = "verify", w.one = verify_one, w.batch = 1;
    if ((rc = open_store(&o, &s))) return rc;
    cas_store_set_param(s, CAS_PARAM_VERIFY, 1);
    rc = walk(s, &o, &w);
    cas_store_close(s);
    return rc ? rc : walk_summary(&o, &w, NULL);
}

static int migrate_one(cas_store *s, const char *flow, const char *key, void *ctx, int *changed, char *err,
                       size_t cap) {
    return cas_store_migrate(s, flow, key, *(const int *)ctx, changed, err, cap);
}

static int cmd_migrate(opts o) {
    cas_store *s;
    walker w;
    int rc, format;
    if (!o.to || (strcmp(o.to, "v1") && strcmp(o.to, "v2")))
        return usage_error("migrate needs --to v1 or --to v2%s", NULL);
    format = !strcmp(o.to, "v1") ? CAS_FORMAT_V1 : CAS_FORMAT_V2;
    memset(&w, 0, sizeof w);
    w.what = "migrate", w.one = migrate_one, w.ctx = &format;
    if ((rc = open_store(&o, &s))) return rc;
    rc = walk(s, &o, &w);
    cas_store_close(s);
    return rc ? rc : walk_summary(&o, &w, o.to);
}

/* ---- a datastore's references: fsck, gc --unreferenced, prune ----
 * A flow's artifacts are named by the N.data.json of every attempt of every task of
 * its runs, and by nothing else in the datastore. Raw blobs (Metaflow's save_data:
 * code packages, metadata tarballs) are named from outside it (a metadata service,
 * a deployed workflow), so gc never removes those. */

typedef struct ref {
    char key[CAS_KEY_BUF];
    int64_t size; /* data.json's, -1 unknown */
    size_t where; /* offset in text: "Flow/run/step/task attempt N artifact 'name'" */
} ref;

typedef struct refs {
    ref *v;
    size_t n, cap;
    char *text;
    size_t tlen, tcap;
    size_t *seen; /* offsets in text of the data.json names read, sorted after a pass */
    size_t nseen, seencap;
    size_t files, problems;
    int failed; /* something could not be read: what it names is unknown */
} refs;

static const char *ref_where(const refs *r, const ref *x) { return r->text + x->where; }

/* Grows an array of n items of size sz to hold one more; 0 or -1 (out of memory). */
static int grow(void **v, size_t *cap, size_t n, size_t sz) {
    void *p;
    size_t want;
    if (n < *cap) return 0;
    want = *cap ? *cap * 2 : 64;
    if (!(p = realloc(*v, want * sz))) return -1;
    *v = p, *cap = want;
    return 0;
}

/* Adds a NUL-terminated string to the text pool; its offset, or (size_t)-1. */
static size_t text_add(refs *r, const char *s) {
    size_t n = strlen(s) + 1, at = r->tlen;
    while (r->tlen + n > r->tcap) {
        char *p = (char *)realloc(r->text, r->tcap ? r->tcap * 2 : 4096);
        if (!p) return (size_t)-1;
        r->text = p, r->tcap = r->tcap ? r->tcap * 2 : 4096;
    }
    memcpy(r->text + at, s, n);
    r->tlen += n;
    return at;
}

static void refs_free(refs *r) {
    free(r->v);
    free(r->text);
    free(r->seen);
    memset(r, 0, sizeof *r);
}

static void problem(refs *r, const opts *o, const char *what, const char *why) {
    r->problems++;
    if (o->json) {
        printf("{\"problem\": ");
        json_str(what);
        printf(", \"reason\": ");
        json_str(why);
        printf("}\n");
    } else {
        printf("BAD %s: %s\n", what, why);
    }
}

static int ref_cmp(const void *a, const void *b) { return strcmp(((const ref *)a)->key, ((const ref *)b)->key); }

static const refs *seen_of; /* qsort has no user pointer */
static int seen_cmp(const void *a, const void *b) {
    return strcmp(seen_of->text + *(const size_t *)a, seen_of->text + *(const size_t *)b);
}

static int referenced(const refs *r, const char *key) {
    ref probe;
    snprintf(probe.key, sizeof probe.key, "%s", key);
    return r->n && bsearch(&probe, r->v, r->n, sizeof *r->v, ref_cmp) != NULL;
}

/* "N.data.json" (or "N.DONE.lock" with suffix ".DONE.lock"): N, else -1. */
static int attempt_file(const char *name, const char *suffix) {
    char *end;
    long n = strtol(name, &end, 10);
    if (end == name || end - name > 3 || name[0] == '-' || name[0] == '+' || strcmp(end, suffix)) return -1;
    return (int)n;
}

static int entry_find(const cas_file_entry *e, size_t n, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(e[mid].name, name);
        if (!c) return 1;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* Reads one N.data.json and adds what it names. */
static void mark_data_json(cas_store *s, const opts *o, const char *name, const char *pathspec, int attempt, refs *r) {
    void *out = NULL;
    size_t len = 0, i;
    cas_task *t = NULL;
    char err[1024], where[2600];
    if (cas_store_file_get(s, name, 64 << 20, &out, &len, NULL, err, sizeof err) < 0 ||
        cas_task_parse(&t, pathspec, attempt, out, len, NULL, err, sizeof err) < 0) {
        r->failed = 1;
        problem(r, o, name, err);
        if (out) cas_store_free_buffer(s, out);
        return;
    }
    cas_store_free_buffer(s, out);
    r->files++;
    for (i = 0; i < cas_task_count(t); i++) {
        const char *aname, *key;
        int64_t size;
        size_t at;
        cas_task_artifact(t, i, &aname, &key, &size, NULL, NULL);
        snprintf(where, sizeof where, "%s attempt %d artifact '%s'", pathspec, attempt, aname);
        if (grow((void **)&r->v, &r->cap, r->n, sizeof *r->v) < 0 || (at = text_add(r, where)) == (size_t)-1) {
            r->failed = 1;
            problem(r, o, name, "out of memory");
            break;
        }
        snprintf(r->v[r->n].key, sizeof r->v[r->n].key, "%s", key);
        r->v[r->n].size = size, r->v[r->n].where = at;
        r->n++;
    }
    cas_task_close(t);
}

/* Marks what the data.json files below dir (a run, "Flow/RUN", or a step or task of
 * it) name, checking each task's DONE markers against them. With pass2 only files
 * the first pass did not see are read (gc's second look, for runs that wrote since). */
static void mark_entries(cas_store *s, const opts *o, const char *dir, const cas_file_entry *e, size_t n, refs *r,
                         int pass2) {
    size_t i;
    char full[1400], pathspec[1400], twin[1400];
    int parts = 1; /* of dir: Flow/RUN = 2, ... Flow/RUN/STEP/TASK = 4 */
    const char *c;
    for (c = strchr(dir, '/'); c; c = strchr(c + 1, '/')) parts++;
    for (i = 0; i < n; i++) {
        const char *name = e[i].name, *file = strrchr(name, '/');
        int slashes = 0, attempt;
        for (c = name; *c; c++) slashes += *c == '/';
        if (slashes != 4 - parts) continue; /* FILE directly in a task folder */
        file = file ? file + 1 : name;
        snprintf(full, sizeof full, "%s/%s", dir, name);
        snprintf(pathspec, sizeof pathspec, "%.*s", (int)(strlen(full) - strlen(file) - 1), full);
        if ((attempt = attempt_file(file, ".data.json")) >= 0) {
            if (pass2) {
                size_t at = text_add(r, full), *hit;
                if (at == (size_t)-1) {
                    r->failed = 1;
                    problem(r, o, full, "out of memory");
                    continue;
                }
                seen_of = r;
                hit = r->nseen ? (size_t *)bsearch(&at, r->seen, r->nseen, sizeof *r->seen, seen_cmp) : NULL;
                r->tlen = at; /* the probe only */
                if (hit) continue;
            } else {
                size_t at = text_add(r, full);
                if (at == (size_t)-1 || grow((void **)&r->seen, &r->seencap, r->nseen, sizeof *r->seen) < 0) {
                    r->failed = 1;
                    problem(r, o, full, "out of memory");
                    continue;
                }
                r->seen[r->nseen++] = at;
            }
            mark_data_json(s, o, full, pathspec, attempt, r);
        } else if ((attempt = attempt_file(file, ".DONE.lock")) >= 0 && !pass2) {
            snprintf(twin, sizeof twin, "%.*s%d.data.json", (int)(strlen(name) - strlen(file)), name, attempt);
            if (!entry_find(e, n, twin)) problem(r, o, full, "a DONE marker, but no data.json for that attempt");
        }
    }
}

/* Marks what the data.json files below dir name, from one listing of it. */
static void mark_dir(cas_store *s, const opts *o, const char *dir, refs *r, int pass2) {
    cas_file_entry *e;
    size_t n;
    char err[1024];
    if (cas_store_file_walk(s, dir, &e, &n, err, sizeof err) < 0) {
        r->failed = 1;
        problem(r, o, dir, err);
        return;
    }
    mark_entries(s, o, dir, e, n, r, pass2);
    cas_store_free_buffer(s, e);
}

/* After a pass: references by key, the data.json names read by name. */
static void refs_sort(refs *r) {
    if (r->n) qsort(r->v, r->n, sizeof *r->v, ref_cmp);
    seen_of = r;
    if (r->nseen) qsort(r->seen, r->nseen, sizeof *r->seen, seen_cmp);
}

/* Marks every run of a flow; 0, or the exit status when the flow cannot be listed. */
static int mark_flow(cas_store *s, const opts *o, const char *flow, refs *r, int pass2) {
    cas_file_entry *e;
    size_t n, i;
    char dir[1100];
    if (!(e = list_dir(s, flow, &n, 0))) {
        r->failed = 1;
        return EXIT_DATA;
    }
    for (i = 0; i < n; i++) { /* every folder but data and _meta: a run's, or one that fails the mark */
        snprintf(dir, sizeof dir, "%s/%s", flow, e[i].name);
        if (e[i].other) { /* a symlinked run, say: Metaflow follows it, the store does not */
            r->failed = 1;
            problem(r, o, dir, "a symbolic link or special file, never followed: what it holds stays unknown");
            continue;
        }
        if (!e[i].is_dir || !strcmp(e[i].name, "data") || !strcmp(e[i].name, "_meta")) continue;
        if (cas_name_check(e[i].name) < 0) {
            r->failed = 1; /* what its data.json files name stays unknown */
            problem(r, o, dir, "a folder Metaflow would not name a run");
            continue;
        }
        mark_dir(s, o, dir, r, pass2);
    }
    cas_store_free_buffer(s, e);
    refs_sort(r);
    return 0;
}

#define CHECK_BATCH 64
typedef char check_batch_fits_a_probe[CHECK_BATCH <= PROBE_MAX && WALK_BATCH <= PROBE_MAX ? 1 : -1];
#define CHECK_BATCH_BYTES (256u << 20)

/* Rehashes each blob the references name, once: in batches through the store's batch
 * read (many requests in flight on an object store, decoding on `threads` threads)
 * where data.json gives a size, one at a time (streamed) where a blob is large or its
 * size unknown. Each failure is a problem named by the first reference to it. */
/* One blob alone, streamed (its size unbounded by data.json's word): hash and size. */
static void check_one(cas_store *s, const opts *o, const char *flow, refs *r, const ref *x) {
    char err[1024], why[1200];
    uint64_t got = 0;
    if (cas_store_verify(s, flow, x->key, &got, err, sizeof err) < 0) {
        problem(r, o, ref_where(r, x), err);
    } else if (x->size >= 0 && got != (uint64_t)x->size) {
        snprintf(why, sizeof why, "data.json says %lld bytes, the blob decodes to %llu", (long long)x->size,
                 (unsigned long long)got);
        problem(r, o, ref_where(r, x), why);
    }
}

static void check_blobs(cas_store *s, const opts *o, const char *flow, refs *r, int threads) {
    const char *keys[CHECK_BATCH];
    const ref *who[CHECK_BATCH];
    size_t lens[CHECK_BATCH], i = 0, nb, k, done = 0, unique = 0;
    int ok[CHECK_BATCH], show = !o->quiet && !o->json && isatty(2);
    uint64_t bytes = 0, all = 0, in_batch;
    int64_t t0 = now_ms();
    for (k = 0; k < r->n; k++)
        if (!k || strcmp(r->v[k].key, r->v[k - 1].key)) unique++, all += r->v[k].size > 0 ? (uint64_t)r->v[k].size : 0;
    while (i < r->n) {
        for (nb = 0, in_batch = 0; i < r->n && nb < CHECK_BATCH; i++) {
            const ref *x = &r->v[i];
            if (i && !strcmp(x->key, r->v[i - 1].key)) continue; /* checked with the first */
            if (x->size < 0 || (uint64_t)x->size > CHECK_BATCH_BYTES / 4 ||
                in_batch + (uint64_t)x->size > CHECK_BATCH_BYTES) {
                if (nb) break; /* the batch so far first; this one next round */
                check_one(s, o, flow, r, x);
                bytes += x->size > 0 ? (uint64_t)x->size : 0;
                progress_bytes(show, ++done, unique, bytes, all, t0, "fsck");
                continue;
            }
            keys[nb] = x->key, who[nb] = x, in_batch += (uint64_t)x->size, nb++;
        }
        if (!nb) continue;
        batch_probe(s, flow, nb, keys, threads, CHECK_BATCH_BYTES / 4, ok, lens); /* data.json's sizes bound nothing */
        for (k = 0; k < nb; k++)
            if (!ok[k] || lens[k] != (size_t)who[k]->size) check_one(s, o, flow, r, who[k]); /* its words */
        done += nb, bytes += in_batch;
        progress_bytes(show, done, unique, bytes, all, t0, "fsck");
    }
}

/* "90", "90s", "15m", "12h", "7d": seconds, or -1. */
static int64_t parse_duration(const char *p) {
    char *end;
    long long v = strtoll(p, &end, 10);
    int64_t unit = !*end               ? 1
                   : !strcmp(end, "s") ? 1
                   : !strcmp(end, "m") ? 60
                   : !strcmp(end, "h") ? 3600
                   : !strcmp(end, "d") ? 86400
                                       : -1;
    if (end == p || v < 0 || unit < 0 || v > INT64_MAX / 86400) return -1;
    return (int64_t)v * unit;
}

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS][Z]", UTC: seconds since the epoch, or -1. */
static int64_t parse_date(const char *p) {
    int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
    int64_t days, yy, era, yoe, doy, doe;
    char tail[4] = "";
    if (sscanf(p, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3) return -1;
    if (p[used] == 'T' || p[used] == ' ') {
        int more = 0;
        if (sscanf(p + used + 1, "%2d:%2d%n", &h, &mi, &more) != 2) return -1;
        used += 1 + more;
        if (p[used] == ':' && sscanf(p + used + 1, "%2d%n", &sec, &more) == 1) used += 1 + more;
    }
    snprintf(tail, sizeof tail, "%s", p + used);
    if ((tail[0] && strcmp(tail, "Z")) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    yy = mo <= 2 ? y - 1 : y; /* days from civil (H. Hinnant's algorithm) */
    era = (yy >= 0 ? yy : yy - 399) / 400;
    yoe = yy - era * 400;
    doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600 + mi * 60 + sec;
}

static int cmd_fsck(opts o) {
    cas_store *s;
    char spec[1100], *part[4], path[1100], err[1024];
    char *flows = NULL;
    const char *f;
    size_t nf, i, problems = 0;
    int rc, n = 0;
    if (o.nargs > 1) return usage_error("fsck takes at most one FLOW[/RUN[/STEP[/TASK]]]%s", NULL);
    if (o.nargs && (n = split_spec(o.args[0], spec, sizeof spec, part)) < 0)
        return usage_error("'%s' is not FLOW[/RUN[/STEP[/TASK]]]", o.args[0]);
    if ((rc = open_store(&o, &s))) return rc;
    cas_store_set_param(s, CAS_PARAM_VERIFY, 1);
    if (n) {
        if ((rc = resolve_spec(s, part, n, path, sizeof path))) {
            cas_store_close(s);
            return rc;
        }
        nf = 1;
        flows = (char *)malloc(strlen(part[0]) + 1);
        if (flows) memcpy(flows, part[0], strlen(part[0]) + 1);
        else rc = data_error("out of memory");
    } else {
        o.nargs = 0;
        flows = flows_of(s, &o, &nf, &rc);
    }
    for (i = 0, f = flows; !rc && i < nf; i++, f += strlen(f) + 1) {
        refs r;
        size_t unique = 0, k, unref = 0;
        char *keys = NULL;
        size_t nkeys = 0;
        memset(&r, 0, sizeof r);
        if (n <= 1) {
            if (mark_flow(s, &o, f, &r, 0)) r.problems++; /* the flow could not be listed (said) */
        } else {
            mark_dir(s, &o, path, &r, 0);
            refs_sort(&r);
        }
        check_blobs(s, &o, f, &r, o.jobs);
        for (k = 0; k < r.n; k++) unique += !k || strcmp(r.v[k].key, r.v[k - 1].key);
        if (n <= 1) { /* a whole flow: what nothing references */
            if (cas_store_keys(s, f, &keys, &nkeys, err, sizeof err) < 0) problem(&r, &o, f, err);
            for (k = 0; k < nkeys; k++) unref += !referenced(&r, keys + k * CAS_KEY_BUF);
            if (keys) cas_store_free_buffer(s, keys);
        }
        if (o.json) {
            printf("{\"flow\": \"%s\", \"scope\": ", f);
            json_str(n ? path : f);
            printf(", \"data_json\": %lu, \"artifacts\": %lu, \"blobs\": %lu, \"unreferenced\": ",
                   (unsigned long)r.files, (unsigned long)r.n, (unsigned long)unique);
            if (n <= 1) printf("%lu", (unsigned long)unref);
            else printf("null");
            printf(", \"problems\": %lu}\n", (unsigned long)r.problems);
        } else {
            printf("fsck %s: %lu data.json files, %lu artifacts in %lu blobs, %lu problem%s", n ? path : f,
                   (unsigned long)r.files, (unsigned long)r.n, (unsigned long)unique, (unsigned long)r.problems,
                   r.problems == 1 ? "" : "s");
            if (n <= 1) printf("; %lu blob%s nothing references", (unsigned long)unref, unref == 1 ? "" : "s");
            printf("\n");
        }
        problems += r.problems;
        refs_free(&r);
    }
    free(flows);
    cas_store_close(s);
    return rc ? rc : problems ? EXIT_DATA : 0;
}

typedef struct gc_totals {
    size_t removed, young, raw, referenced, failed;
    uint64_t bytes;
} gc_totals;

typedef struct gc_sweep {
    cas_store *s;
    const opts *o;
    const char *flow, *dir;
    const refs *r;
    const cas_file_entry *e;
    const size_t *cand;
    gc_totals *t;
    pthread_mutex_t mu;
} gc_sweep;

/* One candidate of the sweep: an unreferenced blob, removed if it is an artifact's
 * (v1, v2), or an orphan sidecar (its blob removed by a gc stopped before it). */
static void gc_one(void *arg, size_t i) {
    gc_sweep *g = (gc_sweep *)arg;
    const cas_file_entry *b = &g->e[g->cand[i]];
    char key[CAS_KEY_BUF], err[1024], name[400];
    int fmt = 0, rc = 0, sidecar = strlen(b->name) > 5 && !strcmp(b->name + strlen(b->name) - 5, "_meta");
    enum { KEPT_REF, KEPT_RAW, GONE, REMOVED } what = REMOVED;
    snprintf(key, sizeof key, "%.*s", (int)(strlen(b->name) - 3 - (sidecar ? 5 : 0)), b->name + 3);
    snprintf(name, sizeof name, "%s/%s", g->dir, b->name);
    if (referenced(g->r, key)) what = KEPT_REF;
    else if (!sidecar && cas_store_stat(g->s, g->flow, key, &fmt, NULL, err, sizeof err) < 0)
        what =
            cas_store_exists(g->s, g->flow, key) == 0 ? GONE : KEPT_RAW; /* an unreadable sidecar: not ours to judge */
    else if (!sidecar && fmt != CAS_FORMAT_V1 && fmt != CAS_FORMAT_V2)
        what = KEPT_RAW; /* raw, legacy: named from outside the datastore */
    if (what == REMOVED && !g->o->dry_run) {
        rc = sidecar ? cas_store_file_remove(g->s, name, err, sizeof err)
                     : cas_store_delete(g->s, g->flow, key, err, sizeof err);
        if (rc == 0) what = GONE; /* nothing there to remove: a sidecar whose blob came back, a blob gone */
    }
    pthread_mutex_lock(&g->mu);
    if (what == KEPT_REF) g->t->referenced++;
    else if (what == KEPT_RAW) g->t->raw++;
    else if (what == REMOVED && rc < 0) g->t->failed++, fprintf(stderr, "%s: %s\n", prog, err);
    else if (what == REMOVED) {
        g->t->removed++, g->t->bytes += b->size;
        if (g->o->json)
            printf("{\"flow\": \"%s\", \"key\": \"%s\", \"bytes\": %llu, \"removed\": %s}\n", g->flow, key,
                   (unsigned long long)b->size, g->o->dry_run ? "false" : "true");
        else if (g->o->verbose)
            printf("%s %s/%s (%llu bytes)\n", g->o->dry_run ? "would remove" : "removed", g->flow, key,
                   (unsigned long long)b->size);
    }
    pthread_mutex_unlock(&g->mu);
}

/* Mark (every data.json of the flow), list the blobs, mark again what was written
 * meanwhile, then sweep (-j requests at a time): unreferenced artifact blobs older
 * than the grace period. */
static int gc_flow(cas_store *s, const opts *o, const char *flow, int64_t grace, gc_totals *t) {
    refs r;
    cas_file_entry *e = NULL;
    size_t n = 0, i, *cand = NULL, nc = 0, ccap = 0;
    char dir[300], err[1024];
    int64_t cutoff = (int64_t)time(NULL) - grace;
    memset(&r, 0, sizeof r);
    mark_flow(s, o, flow, &r, 0);
    snprintf(dir, sizeof dir, "%s/data", flow);
    if (!r.failed && cas_store_blob_list(s, flow, &e, &n, err, sizeof err) < 0) r.failed = 1, problem(&r, o, dir, err);
    for (i = 0; !r.failed && i < n; i++) { /* "ab/KEY"; "ab/KEY_meta" only when its blob is gone */
        int sidecar;
        const char *key = entry_key(e[i].name, &sidecar);
        char kb[CAS_KEY_BUF];
        if (!key) continue;
        snprintf(kb, sizeof kb, "%.*s", (int)(strlen(key) - (sidecar ? 5 : 0)), key);
        if (!sidecar && referenced(&r, kb)) {
            t->referenced++;
            continue;
        }
        if (e[i].mtime <= 0 || e[i].mtime > cutoff) {
            t->young++;
            continue;
        }
        if (grow((void **)&cand, &ccap, nc, sizeof *cand) < 0) {
            r.failed = 1, problem(&r, o, dir, "out of memory");
            break;
        }
        cand[nc++] = i;
    }
    if (!r.failed) mark_flow(s, o, flow, &r, 1); /* data.json files written since the first pass */
    if (r.failed) {
        fprintf(stderr, "%s: not collecting '%s': not every reference to its blobs could be read\n", prog, flow);
        t->failed++;
    } else {
        gc_sweep g;
        g.s = s, g.o = o, g.flow = flow, g.dir = dir, g.r = &r, g.e = e, g.cand = cand, g.t = t;
        pthread_mutex_init(&g.mu, NULL);
        par_run(nc, o->jobs ? o->jobs : 8, gc_one, &g);
        pthread_mutex_destroy(&g.mu);
    }
    free(cand);
    if (e) cas_store_free_buffer(s, e);
    refs_free(&r);
    return 0;
}

static int gc_unreferenced(cas_store *s, const opts *o) {
    gc_totals t;
    char *flows;
    const char *f;
    size_t nf, i;
    int64_t grace = o->grace ? parse_duration(o->grace) : 86400;
    int rc;
    if (grace < 0) return usage_error("'%s' is not a duration (90, 90s, 15m, 12h, 7d)", o->grace);
    if (!(flows = flows_of(s, o, &nf, &rc))) return rc;
    memset(&t, 0, sizeof t);
    for (i = 0, f = flows; i < nf; i++, f += strlen(f) + 1) gc_flow(s, o, f, grace, &t);
    free(flows);
    if (o->json)
        printf("{\"summary\": true, \"dry_run\": %s, \"blobs\": %lu, \"bytes\": %llu, \"referenced\": %lu, "
               "\"younger_than_grace\": %lu, \"raw_or_legacy\": %lu, \"failed\": %lu}\n",
               o->dry_run ? "true" : "false", (unsigned long)t.removed, (unsigned long long)t.bytes,
               (unsigned long)t.referenced, (unsigned long)t.young, (unsigned long)t.raw, (unsigned long)t.failed);
    else
        printf("%s %lu unreferenced blobs (%llu bytes); kept %lu referenced, %lu younger than the grace period, "
               "%lu raw or legacy%s\n",
               o->dry_run ? "would remove" : "removed", (unsigned long)t.removed, (unsigned long long)t.bytes,
               (unsigned long)t.referenced, (unsigned long)t.young, (unsigned long)t.raw,
               t.failed ? "; some could not be collected (above)" : "");
    return t.failed ? EXIT_DATA : 0;
}

/* Removes what is left below dir once its objects are gone: a local store's folders,
 * deepest first (an object store has none: its listing is empty). 1 if dir is gone. */
static int remove_folders(cas_store *s, const char *dir, int depth) {
    cas_file_entry *e;
    size_t n, i;
    char sub[1400], err[1024];
    if (depth > 0 && cas_store_file_list(s, dir, &e, &n, err, sizeof err) == CAS_OK) {
        for (i = 0; i < n; i++) {
            if (!e[i].is_dir) continue;
            snprintf(sub, sizeof sub, "%s/%s", dir, e[i].name);
            remove_folders(s, sub, depth - 1);
        }
        cas_store_free_buffer(s, e);
    }
    cas_store_file_remove(s, dir, err, sizeof err);
    return cas_store_file_list(s, dir, &e, &n, err, sizeof err) == CAS_E_NOTFOUND || (cas_store_free_buffer(s, e), 0);
}

#define PRUNING ".cas-pruning" /* Flow/RUN/.cas-pruning: a prune of this run has begun */

typedef struct prune_job {
    cas_store *s;
    const char *dir;
    const cas_file_entry *e;
    const size_t *pick;
    int failed;
    pthread_mutex_t mu;
} prune_job;

static void prune_one(void *arg, size_t i) {
    prune_job *p = (prune_job *)arg;
    char name[3400], err[1024];
    snprintf(name, sizeof name, "%s/%s", p->dir, p->e[p->pick[i]].name);
    if (cas_store_file_remove(p->s, name, err, sizeof err) < 0) {
        pthread_mutex_lock(&p->mu);
        fprintf(stderr, "%s: %s\n", prog, err);
        p->failed = 1;
        pthread_mutex_unlock(&p->mu);
    }
}

/* A run's metadata, every object below Flow/RUN (-j removals at a time). A marker
 * goes first: a prune stopped midway leaves a run that any prune of the flow
 * finishes, whatever it chose and however little of the run is left to read. */
static int prune_run(cas_store *s, const opts *o, const char *flow, const char *run, size_t *objects) {
    cas_file_entry *e;
    size_t n, i, np = 0, *pick;
    char dir[1100], name[1400], err[1024];
    int stored, rc = 0;
    prune_job p;
    snprintf(dir, sizeof dir, "%s/%s", flow, run);
    *objects = 0;
    if (cas_store_file_walk(s, dir, &e, &n, err, sizeof err) < 0) return data_error(err);
    for (i = 0; i < n; i++) *objects += strcmp(e[i].name, PRUNING) != 0;
    snprintf(name, sizeof name, "%s/%s", dir, PRUNING);
    if (o->dry_run) {
        cas_store_free_buffer(s, e);
        return 0;
    }
    snprintf(err, sizeof err, "out of memory");
    if (cas_store_file_put(s, name, "", 0, NULL, 1, &stored, err, sizeof err) < 0 ||
        !(pick = (size_t *)malloc((n + 1) * sizeof *pick))) {
        cas_store_free_buffer(s, e);
        return data_error(err);
    }
    for (i = 0; i < n; i++)
        if (strcmp(e[i].name, PRUNING)) pick[np++] = i;
    p.s = s, p.dir = dir, p.e = e, p.pick = pick, p.failed = 0;
    pthread_mutex_init(&p.mu, NULL);
    par_run(np, o->jobs ? o->jobs : 8, prune_one, &p);
    pthread_mutex_destroy(&p.mu);
    free(pick);
    cas_store_free_buffer(s, e);
    if (p.failed) return EXIT_DATA;
    remove_folders(s, dir, 8); /* a local store's emptied folders, deepest first */
    /* the marker goes only once nothing else is left (else the next prune finishes the run) */
    if (cas_store_file_walk(s, dir, &e, &n, err, sizeof err) < 0) return data_error(err);
    for (i = 0, np = 0; i < n; i++) np += strcmp(e[i].name, PRUNING) != 0;
    cas_store_free_buffer(s, e);
    if (np) {
        snprintf(err, sizeof err, "'%.600s': %lu objects could not be removed; the next prune tries again", dir,
                 (unsigned long)np);
        return data_error(err);
    }
    if (cas_store_file_remove(s, name, err, sizeof err) < 0) return data_error(err); /* the marker, last */
    if (!remove_folders(s, dir, 8)) {
        snprintf(err, sizeof err, "'%.600s': its objects are gone, but the folder could not be removed", dir);
        rc = data_error(err);
    }
    return rc;
}

static int cmd_prune(opts o) {
    cas_store *s;
    cas_run_info *runs;
    cas_file_entry *flow_e = NULL;
    size_t n, i, k, objects, pruned = 0, skipped = 0, nflow = 0;
    int64_t before = -1;
    long keep = -1;
    int rc, failed = 0;
    const char *flow;
    if (o.nargs < 1) return usage_error("prune needs a FLOW%s", NULL);
    flow = o.args[0];
    if (cas_name_check(flow) < 0) return usage_error("'%s' is not a valid flow name", flow);
    if (o.keep_last) {
        char *end;
        keep = strtol(o.keep_last, &end, 10);
        if (*end || end == o.keep_last || keep < 0)
            return usage_error("--keep-last takes a count, not '%s'", o.keep_last);
    }
    if (o.before && (before = parse_date(o.before)) < 0)
        return usage_error("'%s' is not a date (YYYY-MM-DD)", o.before);
    if ((o.keep_last != NULL) + (o.before != NULL) + (o.nargs > 1) != 1)
        return usage_error("prune takes one of --keep-last N, --before DATE or RUN...%s", NULL);
    for (k = 1; k < (size_t)o.nargs; k++)
        if (cas_name_check(o.args[k]) < 0) return usage_error("'%s' is not a valid run id", o.args[k]);
    if ((rc = open_store(&o, &s))) return rc;
    if (!(runs = flow_runs(s, flow, &n))) {
        cas_store_close(s);
        return EXIT_DATA;
    }
    if (!(flow_e = list_dir(s, flow, &nflow, 0))) nflow = 0; /* the run folders' times */
    for (k = 1; k < (size_t)o.nargs; k++) { /* a named run already gone: said, not a failure (idempotent) */
        for (i = 0; i < n && strcmp(runs[i].id, o.args[k]); i++) {
        }
        if (i == n && !o.quiet)
            fprintf(stderr, "%s: flow '%s' has no run '%s' (pruned already?)\n", prog, flow, o.args[k]);
    }
    for (i = 0; i < n; i++) { /* newest first */
        int chosen = 0;
        if (keep >= 0) chosen = i >= (size_t)keep;
        else if (before >= 0) chosen = runs[i].started > 0 && runs[i].started < before;
        else
            for (k = 1; k < (size_t)o.nargs; k++) chosen |= !strcmp(runs[i].id, o.args[k]);
        if (chosen && !runs[i].finished && !runs[i].started && !o.dry_run) { /* a local folder left empty */
            cas_file_entry *left;
            size_t nl, k2;
            char dir[1100], err[1024];
            int64_t age = 0;
            for (k2 = 0; k2 < nflow; k2++)
                if (!strcmp(flow_e[k2].name, runs[i].id)) age = (int64_t)time(NULL) - flow_e[k2].mtime;
            snprintf(dir, sizeof dir, "%s/%s", flow, runs[i].id);
            /* an hour old at least: a run Metaflow is creating has folders before its first file */
            if (age > 3600 && cas_store_file_walk(s, dir, &left, &nl, err, sizeof err) == CAS_OK) {
                cas_store_free_buffer(s, left);
                if (!nl && remove_folders(s, dir, 8)) {
                    if (!o.quiet) fprintf(stderr, "%s: removed the empty run folder %s\n", prog, dir);
                    continue;
                }
            }
        }
        if ((!chosen || !runs[i].finished) && !o.dry_run) { /* a prune stopped midway: finished now */
            char marker[1100], err[1024];
            snprintf(marker, sizeof marker, "%s/%s/%s", flow, runs[i].id, PRUNING);
            if (cas_store_file_exists(s, marker, err, sizeof err) == 1) {
                chosen = 1;
                if (!o.quiet)
                    fprintf(stderr, "%s: finishing the prune of %s/%s begun before\n", prog, flow, runs[i].id);
                if (!prune_run(s, &o, flow, runs[i].id, &objects)) pruned++;
                else failed = 1;
                continue;
            }
        }
        if (!chosen) continue;
        if (!runs[i].finished && !o.unfinished) {
            skipped++;
            if (!o.quiet)
                fprintf(stderr, "%s: kept %s/%s: it has not finished (--unfinished prunes it)\n", prog, flow,
                        runs[i].id);
            continue;
        }
        if (prune_run(s, &o, flow, runs[i].id, &objects)) {
            failed = 1;
            continue;
        }
        pruned++;
        if (o.json)
            printf("{\"flow\": \"%s\", \"run\": \"%s\", \"objects\": %lu, \"removed\": %s}\n", flow, runs[i].id,
                   (unsigned long)objects, o.dry_run ? "false" : "true");
        else
            printf("%s %s/%s (%lu objects)\n", o.dry_run ? "would prune" : "pruned", flow, runs[i].id,
                   (unsigned long)objects);
    }
    if (!o.json && !o.quiet)
        printf("%s %lu run%s of %lu; %lu unfinished kept\n", o.dry_run ? "would prune" : "pruned",
               (unsigned long)pruned, pruned == 1 ? "" : "s", (unsigned long)n, (unsigned long)skipped);
    cas_store_free_buffer(s, runs);
    if (flow_e) cas_store_free_buffer(s, flow_e);
    cas_store_close(s);
    return failed ? EXIT_DATA : 0;
}

/* ---- cp: a flow, run, step or task, with every blob it references ---- */

typedef struct pump_ctx {
    cas_stream *st;
    int fd;
    int rc;
} pump_ctx;

/* Feeds a decoded stream into a pipe, for a put that reads it: a large blob is copied
 * in a fixed window, never whole in memory. */
static void *pump_thread(void *arg) {
    pump_ctx *p = (pump_ctx *)arg;
    const size_t cap = 1 << 20;
    unsigned char *buf = (unsigned char *)malloc(cap); /* one per copy: copies run side by side */
    size_t got;
    p->rc = buf ? 0 : -1;
    while (buf) {
        size_t off = 0;
        if (cas_stream_read(p->st, buf, cap, &got) < 0) {
            p->rc = -1;
            break;
        }
        if (!got) break;
        while (off < got) {
            ssize_t w = write(p->fd, buf + off, got - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                p->rc = -1;
                break;
            }
            off += (size_t)w;
        }
        if (p->rc) break;
    }
    free(buf);
    close(p->fd);
    return NULL;
}

#define CP_WHOLE_MAX (64u << 20) /* larger blobs (or of unknown size) are copied streaming */

/* One blob from src to dst unless dst has it: in its own format, or `to` (v1, v2)
 * for an artifact; legacy blobs are written as v1 (the same gzip, now with metadata).
 * Read whole through `whole` (src, its decoded size capped at CP_WHOLE_MAX: data.json's
 * size is the store's word, not a bound) where data.json says it is small, else (or
 * past the cap) streamed through a pipe into a put: memory stays bounded. */
static int cp_blob(cas_store *src, cas_store *whole, cas_store *dst, const char *flow, const ref *x, int to,
                   int *copied, char *err, size_t cap) {
    int fmt = 0, rc, stored = 0, streamed = !(x->size >= 0 && (uint64_t)x->size <= CP_WHOLE_MAX);
    char key[CAS_KEY_BUF];
    *copied = 0;
    key[0] = 0;
    if ((rc = cas_store_exists(dst, flow, x->key)) == 1) return 0;
    if (rc < 0) return snprintf(err, cap, "invalid key '%s'", x->key), -1;
    if (cas_store_stat(src, flow, x->key, &fmt, NULL, err, cap) < 0) return -1;
    if (fmt != CAS_FORMAT_RAW) fmt = to ? to : fmt == CAS_FORMAT_LEGACY ? CAS_FORMAT_V1 : fmt;
    if (!streamed) {
        void *data;
        size_t len;
        if ((rc = cas_store_get(whole, flow, x->key, &data, &len, err, cap)) == CAS_E_LIMIT) streamed = 1;
        else if (rc < 0) return -1;
        else {
            rc = cas_store_put(dst, flow, data, len, fmt, key, &stored, err, cap);
            cas_store_free_buffer(whole, data);
        }
    }
    if (streamed) {
        pthread_t th;
        pump_ctx p;
        int fds[2];
        if (cas_stream_open(src, flow, x->key, &p.st, err, cap) < 0) return -1;
        if (pipe(fds) < 0) {
            cas_stream_close(p.st);
            return snprintf(err, cap, "pipe: %s", strerror(errno)), -1;
        }
        p.fd = fds[1];
        if (pthread_create(&th, NULL, pump_thread, &p) != 0) {
            close(fds[0]), close(fds[1]);
            cas_stream_close(p.st);
            return snprintf(err, cap, "cannot start a thread"), -1;
        }
        rc = cas_store_put_fd(dst, flow, fds[0], fmt, key, &stored, err, cap);
        close(fds[0]); /* a put that stopped early: the pump's writes fail, and it ends */
        pthread_join(th, NULL);
        if (rc >= 0 && p.rc < 0) rc = -1, snprintf(err, cap, "%s", cas_stream_message(p.st));
        cas_stream_close(p.st);
    }
    if (rc < 0) return -1; /* bytes a failed source left are a blob of their own key: gc's, not ours to take */
    if (strcmp(key, x->key)) return snprintf(err, cap, "blob '%s' decodes to another key (%s)", x->key, key), -1;
    *copied = stored;
    return 0;
}

/* One object from src to dst (replace = 0: one dst has is kept); *copied = 1 if written. */
static int cp_file(cas_store *src, cas_store *dst, const char *name, int replace, int *copied) {
    void *data = NULL;
    char *meta = NULL, err[1024];
    size_t len;
    int stored = 0, rc = 0;
    *copied = 0;
    if (!replace && cas_store_file_exists(dst, name, err, sizeof err) == 1) return 0;
    if (cas_store_file_get(src, name, 0, &data, &len, &meta, err, sizeof err) < 0 ||
        cas_store_file_put(dst, name, data, len, meta, replace, &stored, err, sizeof err) < 0)
        rc = data_error(err);
    *copied = stored;
    if (data) cas_store_free_buffer(src, data);
    if (meta) cas_store_free_buffer(src, meta);
    return rc;
}

typedef struct cp_ctx {
    cas_store *src, *whole, *dst;
    const char *flow, *dir;
    const opts *o;
    int to, failed, dir_failed; /* failed: the command's; dir_failed: the folder being copied */
    const refs *r;
    const size_t *pick; /* the refs or walk entries this pass copies */
    const cas_file_entry *files;
    size_t blobs, there, copied_files;
    pthread_mutex_t mu;
} cp_ctx;

static void cp_blob_at(void *arg, size_t i) {
    cp_ctx *c = (cp_ctx *)arg;
    const ref *x = &c->r->v[c->pick[i]];
    char err[1024];
    int copied = 0, rc = cp_blob(c->src, c->whole, c->dst, c->flow, x, c->to, &copied, err, sizeof err);
    pthread_mutex_lock(&c->mu);
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, ref_where(c->r, x), err);
        c->failed = c->dir_failed = 1;
    } else if (copied) {
        c->blobs++;
        if (c->o->json) printf("{\"flow\": \"%s\", \"key\": \"%s\", \"copied\": true}\n", c->flow, x->key);
    } else {
        c->there++;
    }
    pthread_mutex_unlock(&c->mu);
}

static void cp_file_at(void *arg, size_t i) {
    cp_ctx *c = (cp_ctx *)arg;
    char name[3400];
    int copied = 0, rc;
    snprintf(name, sizeof name, "%s/%s", c->dir, c->files[c->pick[i]].name);
    rc = cp_file(c->src, c->dst, name, 0, &copied);
    pthread_mutex_lock(&c->mu);
    if (rc) c->failed = c->dir_failed = 1;
    c->copied_files += (size_t)copied;
    pthread_mutex_unlock(&c->mu);
}

/* Copies what lies below dir, from one listing of it: every blob its data.json files
 * reference (once each), then its objects (those dst has are kept; a prune's marker
 * never), the end step's DONE markers last. A data.json is copied only once every blob
 * it names is there, and only one whose names were read: what was written below dir
 * after the listing waits for the next copy. A folder that fails is reported and the
 * others go on. */
static void cp_dir(cp_ctx *c, const char *dir) {
    refs r;
    cas_file_entry *e = NULL;
    size_t n = 0, i, np, *pick;
    char err[1024];
    int pass, threads = c->o->jobs ? c->o->jobs : 8;
    memset(&r, 0, sizeof r);
    c->dir_failed = 0;
    if (cas_store_file_walk(c->src, dir, &e, &n, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        c->failed = 1;
        return;
    }
    mark_entries(c->src, c->o, dir, e, n, &r, 0);
    refs_sort(&r);
    if (r.failed || !(pick = (size_t *)malloc((r.n + n + 1) * sizeof *pick))) {
        fprintf(stderr, "%s: not copying '%s': not every data.json below it could be read\n", prog, dir);
        c->failed = 1;
    } else {
        for (i = np = 0; i < r.n; i++)
            if (!i || strcmp(r.v[i].key, r.v[i - 1].key)) pick[np++] = i;
        c->r = &r, c->pick = pick;
        par_run(np, threads, cp_blob_at, c);
        c->dir = dir, c->files = e;
        for (pass = 0; pass < 2 && !c->dir_failed; pass++) { /* blobs first, DONE markers last */
            for (i = np = 0; i < n; i++) {
                const char *file = strrchr(e[i].name, '/');
                file = file ? file + 1 : e[i].name;
                if (!strcmp(file, PRUNING)) continue;
                if ((attempt_file(file, ".DONE.lock") >= 0) == pass) pick[np++] = i;
            }
            par_run(np, threads, cp_file_at, c);
        }
        free(pick);
    }
    cas_store_free_buffer(c->src, e);
    refs_free(&r);
}

static int cmd_cp(opts o) {
    cas_store *src = NULL, *whole = NULL, *dst = NULL;
    char spec[1100], *part[4], path[1100], dir[2300], err[1024];
    cas_file_entry *runs = NULL;
    size_t nruns = 0, i;
    int rc, n = 0;
    cp_ctx c;
    if (o.nargs != 3) return usage_error("cp takes SRC_ROOT DST_ROOT FLOW[/RUN[/STEP[/TASK]]]%s", NULL);
    if (o.to && strcmp(o.to, "v1") && strcmp(o.to, "v2")) return usage_error("--to takes v1 or v2, not '%s'", o.to);
    if ((n = split_spec(o.args[2], spec, sizeof spec, part)) < 0)
        return usage_error("'%s' is not FLOW[/RUN[/STEP[/TASK]]]", o.args[2]);
    if (cas_store_open(&src, o.args[0], NULL, err, sizeof err) < 0) return data_error(err);
    cas_store_set_param(src, CAS_PARAM_VERIFY, 1);
    if (cas_store_open(&whole, o.args[0], NULL, err, sizeof err) < 0) {
        cas_store_close(src);
        return data_error(err);
    }
    cas_store_set_param(whole, CAS_PARAM_VERIFY, 1);
    cas_store_set_param(whole, CAS_PARAM_LIMIT, CP_WHOLE_MAX);
    if (!strstr(o.args[1], "://") && (rc = make_dirs(o.args[1]))) {
        cas_store_close(src), cas_store_close(whole);
        return rc;
    }
    if (cas_store_open(&dst, o.args[1], NULL, err, sizeof err) < 0) {
        cas_store_close(src), cas_store_close(whole);
        return data_error(err);
    }
    memset(&c, 0, sizeof c);
    c.src = src, c.whole = whole, c.dst = dst, c.flow = part[0], c.o = &o;
    c.to = !o.to ? 0 : !strcmp(o.to, "v1") ? CAS_FORMAT_V1 : CAS_FORMAT_V2;
    pthread_mutex_init(&c.mu, NULL);
    signal(SIGPIPE, SIG_IGN); /* a put that stops early closes its pipe: the pump's write fails */
    if ((rc = resolve_spec(src, part, n, path, sizeof path))) goto out;
    if (n > 1) cp_dir(&c, path);
    else if (!(runs = list_dir(src, path, &nruns, 0))) rc = EXIT_DATA;
    for (i = 0; i < nruns; i++) { /* a flow: its runs, its _meta, its latest_run */
        int copied = 0;
        if (!strcmp(runs[i].name, "data")) continue;
        snprintf(dir, sizeof dir, "%s/%s", path, runs[i].name);
        if (runs[i].is_dir) cp_dir(&c, dir);
        else if (cp_file(src, dst, dir, 1, &copied)) c.failed = 1; /* the source's */
        c.copied_files += (size_t)copied;
    }
    if (!rc && o.json)
        printf("{\"summary\": true, \"blobs\": %lu, \"blobs_there\": %lu, \"files\": %lu, \"failed\": %s}\n",
               (unsigned long)c.blobs, (unsigned long)c.there, (unsigned long)c.copied_files,
               c.failed ? "true" : "false");
    else if (!rc && !o.quiet)
        printf("copied %s: %lu blobs (%lu already there), %lu files%s\n", path, (unsigned long)c.blobs,
               (unsigned long)c.there, (unsigned long)c.copied_files, c.failed ? "; some failed (above)" : "");
out:
    pthread_mutex_destroy(&c.mu);
    if (runs) cas_store_free_buffer(src, runs);
    cas_store_close(src);
    cas_store_close(whole);
    cas_store_close(dst);
    return rc ? rc : c.failed ? EXIT_DATA : 0;
}

static int cmd_gc(opts o) {
    cas_store *s;
    char err[1024];
    uint64_t removed = 0;
    int rc, remote;
    if (o.unreferenced) {
        if ((rc = open_store(&o, &s))) return rc;
        rc = gc_unreferenced(s, &o);
        cas_store_close(s);
        return rc;
    }
    if (o.nargs || o.grace || o.dry_run || o.json)
        return usage_error("gc takes these only with --unreferenced%s", NULL);
    if ((rc = open_store(&o, &s))) return rc;
    rc = cas_store_gc(s, &removed, err, sizeof err);
    /* the object stores' gc aborts multipart uploads; a local store's, and a plugin's, removes temp files */
    remote = !strncmp(cas_store_root(s), "s3://", 5) || !strncmp(cas_store_root(s), "azure://", 8);
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

/* The subcommands: name, the options each takes (parse's check), what it runs, and
 * its help. One opening for all (main): parse, --help, run, finish. */
typedef struct command {
    const char *name, *takes;
    int (*fn)(opts o);
    const char *help;
} command;

static const command commands[] = {
    {"artifact", "--root --verify", cmd_artifact,
     "usage: cas artifact FLOW/RUN/STEP/TASK/NAME [--root ROOT] [--verify]\n\n"
     "Writes the artifact's decoded bytes (its pickle, or its serializer's bytes) to stdout, streaming: memory stays\n"
     "bounded whatever the size. The task's latest finished attempt is used, as Metaflow\n"
     "does. --verify rehashes the bytes against the key and checks the recorded size.\n"},
    {"ls", "--root --json", cmd_ls,
     "usage: cas ls [FLOW[/RUN[/STEP[/TASK]]]] [--root ROOT] [--json]\n\n"
     "Lists a level of the datastore: its flows; a flow's runs, newest first (start time:\n"
     "Metaflow's own record of it where the local metadata kept one, else when its\n"
     "_parameters task wrote; finished: its end step has a done task; user and tags where\n"
     "recorded); a run's steps and their task counts; a step's tasks (the attempt Metaflow reads, done or\n"
     "not); a task's artifacts (name, key, size from data.json, encoding, the blob's\n"
     "format: v1 gzip, v2 LZ4, raw, legacy, or 'missing'). RUN may be 'latest', the\n"
     "newest run. --json prints one JSON object per row (NDJSON), by level: {\"flow\"};\n"
     "{\"flow\", \"run\", \"pathspec\", \"started\" (ISO 8601 UTC or null), \"finished\", \"user\"\n"
     "(or null), \"tags\", \"system_tags\"}; {\"pathspec\", \"step\", \"tasks\"}; {\"pathspec\",\n"
     "\"task\", \"attempt\" (-1: none done), \"done\"}; {\"pathspec\", \"attempt\", \"name\",\n"
     "\"key\", \"size\" (or null), \"encoding\", \"format\"}.\n"},
    {"cat", "--verify", cmd_cat,
     "usage: cas cat BLOBFILE [--verify]\n\n"
     "Decodes one blob file to stdout, by the rules Metaflow applies: its sidecar\n"
     "BLOBFILE_meta when present, else legacy gzip. --verify rehashes against the key\n"
     "the file is named after.\n"},
    {"stat", "--json", cmd_stat,
     "usage: cas stat BLOBFILE [--json]\n\n"
     "Shows how a blob is stored: the format its sidecar names and the format its bytes\n"
     "are in, stored and decoded size, the ratio, and whether it hashes to its file name.\n"
     "--json: {\"file\", \"sidecar\", \"format\", \"bytes\" (gzip, lz4, zstd, empty, short, other),\n"
     "\"stored\", \"decoded\", \"ratio\", \"key_ok\"} (+ \"error\"; decoded and ratio null then).\n"},
    {"show", "--root --json --max-bytes --items --depth --max-read", cmd_show,
     "usage: cas show FLOW/RUN/STEP/TASK/NAME [--root ROOT] [OPTIONS]\n"
     "       cas show FLOW/RUN/STEP/TASK [--root ROOT] [OPTIONS]   every artifact of the task\n"
     "       cas show BLOBFILE [OPTIONS]\n\n"
     "Shows an artifact's value, like Python's repr, by reading its pickle opcodes: nothing\n"
     "is unpickled or imported, so no code of the pickle runs and neither numpy, pandas nor\n"
     "the flow's classes are needed. numpy arrays show their shape, dtype and first values\n"
     "after reading only those; pandas frames their shape, columns and first rows (their\n"
     "column names come last in the pickle: the whole artifact is read, in bounded memory).\n"
     "A limit reached leaves a partial preview with a marker ('...', '<truncated: ...>').\n"
     "An artifact another serializer wrote (data.json's encoding is not pickle-vN or\n"
     "gzip+pickle-vN, Metaflow 2.20+) is never parsed: its encoding, size and first bytes.\n"
     "A task (RUN may be 'latest') shows every artifact: with --json one row each,\n"
     "{\"pathspec\", \"name\", \"key\", \"size\", \"encoding\", \"preview\"} (+ \"error\").\n\n"
     "  --json         a JSON tree ({\"type\": ..., \"repr\": ...}) instead of text\n"
     "  --items N      items shown per container, values per array row (10)\n"
     "  --depth N      nesting levels shown (8)\n"
     "  --max-bytes N  bytes of output (4096)\n"
     "  --max-read N   decoded bytes read at most (no limit)\n"
     "Exit status 1 for a malformed pickle or a blob that cannot be read (what came before\n"
     "is still shown).\n"},
    {"put", "--root --flow --v1 --v2 --raw --json", cmd_put,
     "usage: cas put --flow FLOW [--root ROOT] [--v1|--v2|--raw] [--json] [FILE|-]\n\n"
     "Stores FILE (or stdin, also as -) in FLOW's content-addressed store and prints its key\n"
     "(--json: {\"flow\", \"key\", \"stored\"}, stored false when the key was there).\n"
     "--v1 (default) writes gzip, readable by every Metaflow release; --v2 writes an LZ4\n"
     "frame (Metaflow PR #3090 readers only); --raw stores the bytes as they are.\n"
     "An existing key writes nothing. The write is atomic: on a local store temp files,\n"
     "then rename; on S3 one PUT with the metadata (If-None-Match: *), or a multipart\n"
     "upload that becomes visible only when complete (aborted on failure).\n"},
    {"get", "--root --flow --verify", cmd_get,
     "usage: cas get --flow FLOW KEY [--root ROOT] [--verify]\n\n"
     "Writes the blob's decoded bytes to stdout, streaming. --verify rehashes them (always\n"
     "on an object store); bytes that do not hash to KEY end in exit 1.\n"},
    {"verify", "--root --quiet --json --jobs", cmd_verify,
     "usage: cas verify [--root ROOT] [--quiet] [--json] [-j N] [FLOW...]\n\n"
     "Decodes every blob of the named flows (all flows by default) and rehashes it\n"
     "against its key. Small blobs are read many at a time (many requests in flight on\n"
     "an object store, -j N decoding threads, 2 by default). Prints each bad blob with\n"
     "the reason and a summary; exits 1 if any blob is bad. A terminal shows progress\n"
     "(bytes, rate, ETA); --quiet hides it. --json: a row per blob, {\"flow\", \"key\",\n"
     "\"ok\"} (+ \"error\"), then {\"summary\": true, \"blobs\", \"ok\", \"bad\", ...}.\n"},
    {"migrate", "--root --quiet --to --json --jobs", cmd_migrate,
     "usage: cas migrate --to v1|v2 [--root ROOT] [--quiet] [--json] [-j N] [FLOW...]\n\n"
     "Re-encodes every blob of the named flows (all by default) as cas_version 1 (gzip,\n"
     "readable by every Metaflow) or 2 (LZ4 frame, Metaflow PR #3090). Keys do not change;\n"
     "raw blobs are left alone; every blob is verified before it is rewritten. Resumable:\n"
     "blobs already in the target format are skipped, and a blob left half-migrated by a\n"
     "crash (bytes and sidecar disagreeing) is repaired. Blobs are migrated -j N at a time\n"
     "(8 by default: many requests in flight on an object store), each streaming; rows\n"
     "come in listing order. --json: a row per blob, {\"flow\", \"key\", \"ok\", \"changed\"}\n"
     "(+ \"error\"), then a summary row.\n"},
    {"fsck", "--root --quiet --json --jobs", cmd_fsck,
     "usage: cas fsck [FLOW[/RUN[/STEP[/TASK]]]] [--root ROOT] [--json] [-j N] [--quiet]\n\n"
     "Checks the datastore by its references: every artifact that the data.json of every\n"
     "attempt of every task names exists, has valid metadata, decodes and hashes to its\n"
     "key, and is the size data.json says; every DONE marker has its attempt's data.json.\n"
     "For a whole flow it also counts the blobs nothing references (not a problem: 'cas gc\n"
     "--unreferenced' frees them). Blobs are read in batches, -j N decoding threads (2),\n"
     "many requests in flight on an object store; a terminal shows bytes, rate and ETA.\n"
     "Prints each problem (BAD WHAT: WHY, or with --json {\"problem\", \"reason\"} rows) and\n"
     "a summary per flow; exits 1 on any problem, and when the root holds no datastore.\n"},
    {"gc", "--root --unreferenced --grace --dry-run --json --verbose --jobs", cmd_gc,
     "usage: cas gc [--root ROOT]\n"
     "       cas gc --unreferenced [FLOW...] [--grace DURATION] [--dry-run] [--json] [-v] [-j N]\n\n"
     "--unreferenced: removes the artifact blobs (v1, v2) that no data.json of any attempt\n"
     "of any task of any run (finished or not) names and that are older than the grace\n"
     "period (default 1d; 90s, 15m, 12h, 7d). Raw and legacy blobs (code packages,\n"
     "metadata tarballs, named from outside the datastore) are kept. A flow whose\n"
     "references cannot all be read is not collected. Reports what was (or with\n"
     "--dry-run would be) freed, count and bytes; -v or --json names each blob. -j N:\n"
     "removals at a time (8). --json rows: {\"flow\", \"key\", \"bytes\", \"removed\"} (false\n"
     "with --dry-run), then {\"summary\": true, \"dry_run\", \"blobs\", \"bytes\", \"referenced\",\n"
     "\"younger_than_grace\", \"raw_or_legacy\", \"failed\"}.\n\n"
     "Without it:\n"
     "Removes what writers killed mid-put left behind. Local stores: temp files (their\n"
     "process is gone, or they are over an hour old). S3: multipart uploads begun over a\n"
     "day ago (CAS_S3_GC_AGE seconds) and never completed, whose parts S3 keeps and bills\n"
     "until they are aborted. Readers never see either; this only frees the space.\n"},
    {"prune", "--root --json --keep-last --before --dry-run --unfinished --quiet --jobs", cmd_prune,
     "usage: cas prune FLOW (--keep-last N | --before DATE | RUN...) [--dry-run] [--unfinished]\n"
     "                [--root ROOT] [--json]\n\n"
     "Removes whole runs' metadata: every object below FLOW/RUN (data.json, attempt and\n"
     "DONE files, logs, a local store's metadata folders), so that the next 'cas gc\n"
     "--unreferenced' frees the blobs only they used. Chooses the runs older than the N\n"
     "newest, those started before DATE (YYYY-MM-DD[THH:MM[:SS]][Z], UTC), or those named.\n"
     "A run that has not finished is kept unless --unfinished is given. -j N: removals at\n"
     "a time (8). A prune marks a run (FLOW/RUN/.cas-pruning) before it removes anything,\n"
     "and the marker last: any later prune of the flow finishes a run a stopped prune left\n"
     "marked. Idempotent. --json: a row per run,\n"
     "{\"flow\", \"run\", \"objects\", \"removed\"} (false with --dry-run).\n"},
    {"cp", "--to --json --quiet --jobs", cmd_cp,
     "usage: cas cp SRC_ROOT DST_ROOT FLOW[/RUN[/STEP[/TASK]]] [--to v1|v2] [--json] [-j N]\n\n"
     "Copies a flow, run, step or task between any two roots (local, s3://, azure://): every\n"
     "blob its data.json files reference, then its metadata files (data.json, attempt and\n"
     "DONE markers, logs; the end step's DONE markers last, so an interrupted copy never\n"
     "looks finished). What the destination has is skipped: run it again to finish an\n"
     "interrupted copy. Blobs are verified as they are read; large ones stream. --to\n"
     "re-encodes artifacts as v1 (gzip) or v2 (LZ4) on the way; raw blobs stay raw.\n"
     "-j N: copies at a time (8), so that an object store's requests overlap.\n"
     "--json: a row per blob copied, {\"flow\", \"key\", \"copied\"}, then {\"summary\": true,\n"
     "\"blobs\", \"blobs_there\", \"files\", \"failed\"}.\n"},
};

static const command *find_command(const char *name) {
    size_t i;
    for (i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(name, commands[i].name)) return &commands[i];
    return NULL;
}

/* CAS_BACKENDS: each shared object is loaded and its registrar handed
 * cas_backend_register, before any store is opened. A plugin that cannot be loaded
 * or registered stops the command: a root it serves would otherwise be refused with
 * a less useful message, or served by the backend it meant to replace. */
static int load_backends(void) {
    const char *list = getenv("CAS_BACKENDS");
    char path[4096];
    while (list && *list) {
        const char *end = strchr(list, ':');
        size_t n = end ? (size_t)(end - list) : strlen(list);
        void *lib;
        union {
            void *p;
            int (*fn)(int (*)(const char *, cas_backend_opener));
        } reg;
        int rc;
        if (n >= sizeof path) return usage_error("CAS_BACKENDS: a path is too long: '%.200s'", list);
        memcpy(path, list, n);
        path[n] = 0;
        list = end ? end + 1 : list + n;
        if (!n) continue;
        if (!(lib = dlopen(path, RTLD_NOW | RTLD_LOCAL))) return usage_error("CAS_BACKENDS: %s", dlerror());
        if (!(reg.p = dlsym(lib, "cas_backend_plugin")))
            return usage_error("CAS_BACKENDS: '%s' exports no cas_backend_plugin", path);
        if ((rc = reg.fn(cas_backend_register)) < 0) {
            fprintf(stderr, "%s: CAS_BACKENDS: %s: its registration failed: %s\n", prog, path, cas_strerror(rc));
            return EXIT_USAGE;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    const command *cmd;
    opts o;
    int rc;
#ifdef __linux__
    /* the process holds object-store credentials: no core dump, no ptrace by others of this user
     * (CAS_CORE_DUMPS=1 keeps them, to debug a crash) */
    if (!getenv("CAS_CORE_DUMPS")) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
    if (argc == 3 && !strcmp(argv[1], "help")) { /* cas help CMD */
        if (!(cmd = find_command(argv[2]))) return usage_error("unknown command '%s'", argv[2]);
        fputs(cmd->help, stdout);
        return finish(0);
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        fputs(usage_settings, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : finish(0);
    }
    if (!strcmp(argv[1], "--help-all")) { /* the man page's text: the usage, then every command's help */
        size_t i;
        fputs(usage_main, stdout);
        fputs(usage_settings, stdout);
        for (i = 0; i < sizeof commands / sizeof *commands; i++)
            printf("\ncas %s\n\n%s", commands[i].name, commands[i].help);
        return finish(0);
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("cas %s\n", cas_version_string());
        return finish(0);
    }
    if (!(cmd = find_command(argv[1]))) return usage_error("unknown command '%s'", argv[1]);
    if ((rc = parse(argc - 1, argv + 1, &o, cmd->takes))) return rc;
    if (o.help) {
        fputs(cmd->help, stdout);
        return finish(0);
    }
    if ((rc = load_backends())) return rc;
    return finish(cmd->fn(o));
}
