/*
 * outfile.c - output files that appear whole or not at all.
 *
 * Every file the command writes goes to a temporary name in the same
 * directory (so the final rename never crosses a file system) and is renamed
 * into place only once it is complete. While a temporary file exists its
 * name sits in a fixed table that the SIGINT/SIGTERM handler walks: the
 * handler unlinks them, says so, and exits, so an interrupted run leaves no
 * partial file. The table is fixed-size and filled before the file is
 * created, because a signal handler may neither allocate nor take locks.
 *
 * A path that names an existing file that is not a regular file (a device
 * such as /dev/stdout or /dev/full, a FIFO) is written directly: renaming
 * a temporary file over it would replace the device with a plain file.
 * Such an output has an empty `temp`; its errors still surface at commit.
 */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMP_SLOTS 128
#define TEMP_PATH_MAX 4096

/* A slot is live when its flag is set; the path is written before the flag
 * and cleared only after it, so the handler never reads a half-written name. */
static char temp_path[TEMP_SLOTS][TEMP_PATH_MAX];
static volatile sig_atomic_t temp_live[TEMP_SLOTS];
static volatile sig_atomic_t interrupted;
static unsigned temp_counter;

int cli_fail(bs_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

static void write_stderr(const char *s)
{
    ssize_t rc = write(STDERR_FILENO, s, strlen(s));
    (void)rc;
}

static void on_interrupt(int sig)
{
    interrupted = 1;
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (temp_live[i])
            unlink(temp_path[i]);
    write_stderr("\nbubblesim: interrupted; unfinished output files were removed\n");
    _exit(128 + sig);
}

/* Installs handler for SIGINT and SIGTERM. A signal ignored by whoever
 * started us (nohup, a background job) stays ignored. */
static void install_handlers(void (*handler)(int))
{
    int sigs[] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = handler;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

void cli_install_interrupt_cleanup(void)
{
    install_handlers(on_interrupt);
}

/* The --partial mode of sweep: a signal only sets a flag, so the command
 * can stop its workers and keep what is finished; a second signal gets the
 * usual cleanup (cli_install_interrupt_cleanup again). */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

void cli_install_interrupt_flag(void)
{
    install_handlers(on_stop);
}

int cli_interrupt_signal(void)
{
    return stop_signal;
}

static int claim_slot(const char *path)
{
    for (int i = 0; i < TEMP_SLOTS; i++) {
        if (!temp_live[i]) {
            snprintf(temp_path[i], TEMP_PATH_MAX, "%s", path);
            temp_live[i] = 1;
            return i;
        }
    }
    return -1;
}

static void release_slot(int slot)
{
    if (slot >= 0)
        temp_live[slot] = 0;
}

int cli_outfile_open(cli_outfile *out, const char *path, bs_error *err)
{
    memset(out, 0, sizeof *out);
    out->slot = -1;
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    if (strlen(path) + 40 >= TEMP_PATH_MAX)
        return cli_fail(err, BS_ERR_IO, "%s: path too long", path);
    memcpy(out->path, path, strlen(path) + 1); /* fits: checked above */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        if (!(out->file = fopen(path, "w"))) {
            out->saved_errno = errno;
            return cli_fail(err, BS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        }
        return BS_OK;
    }
    snprintf(out->temp, sizeof out->temp, "%.*s.%s.tmp.%ld.%u", (int)dir_len, path, path + dir_len,
             (long)getpid(), temp_counter++);
    if ((out->slot = claim_slot(out->temp)) < 0)
        return cli_fail(err, BS_ERR_INTERNAL, "too many output files open at once");
    int fd = open(out->temp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0 || !(out->file = fdopen(fd, "w"))) {
        int e = errno;
        out->saved_errno = e;
        if (fd >= 0)
            close(fd);
        release_slot(out->slot);
        out->slot = -1;
        return cli_fail(err, BS_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return BS_OK;
}

int cli_outfile_commit(cli_outfile *out, bs_error *err)
{
    int failed = ferror(out->file) != 0;
    failed |= fclose(out->file) != 0;
    out->file = NULL;
    if (!out->temp[0]) /* written directly (a device or a FIFO) */
        return failed ? cli_fail(err, BS_ERR_IO, "%s: write failed: %s", out->path,
                                 errno ? strerror(errno) : "I/O error")
                      : BS_OK;
    if (failed) {
        int e = errno;
        unlink(out->temp);
        release_slot(out->slot);
        out->slot = -1;
        return cli_fail(err, BS_ERR_IO, "%s: write failed: %s", out->path,
                        e ? strerror(e) : "I/O error");
    }
    if (rename(out->temp, out->path) != 0) {
        int e = errno;
        unlink(out->temp);
        release_slot(out->slot);
        out->slot = -1;
        return cli_fail(err, BS_ERR_IO, "%s: cannot write: %s", out->path, strerror(e));
    }
    release_slot(out->slot);
    out->slot = -1;
    return BS_OK;
}

void cli_outfile_abort(cli_outfile *out)
{
    if (out->file)
        fclose(out->file);
    out->file = NULL;
    if (out->slot >= 0) {
        unlink(out->temp);
        release_slot(out->slot);
        out->slot = -1;
    }
}

int cli_temp_name(char *buf, size_t size, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    int n = snprintf(buf, size, "%.*s.%s.tmp.%ld.%u", (int)dir_len, path, path + dir_len,
                     (long)getpid(), temp_counter++);
    if (n < 0 || (size_t)n >= size)
        return -1;
    return claim_slot(buf);
}

void cli_temp_release(int slot, const char *name, int remove)
{
    if (slot < 0)
        return;
    if (remove)
        unlink(name);
    release_slot(slot);
}

/* Creates dir and its missing parents, like mkdir -p. */
static int make_dirs(const char *dir)
{
    char buf[TEMP_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int cli_prepare_dir(const char *dir, bs_error *err)
{
    struct stat st;
    if (make_dirs(dir) != 0)
        return cli_fail(err, BS_ERR_IO, "%s: cannot create the output directory: %s", dir,
                        strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_fail(err, BS_ERR_IO, "%s: not a directory", dir);
    /* access() would say yes to root on a read-only mount; only a real file
     * proves the directory takes writes. */
    char probe[TEMP_PATH_MAX];
    if (snprintf(probe, sizeof probe, "%s/probe", dir) >= (int)sizeof probe)
        return cli_fail(err, BS_ERR_IO, "%s: path too long", dir);
    cli_outfile f;
    if (cli_outfile_open(&f, probe, err))
        return cli_fail(err, BS_ERR_IO, "%s: output directory is not writable: %s", dir,
                        strerror(f.saved_errno));
    cli_outfile_abort(&f);
    return BS_OK;
}

int cli_write_result_file(const char *path, const char *writer_name, const bs_result *res,
                          const bs_config *cfg, bs_error *err)
{
    cli_outfile out;
    const bs_writer *writer = bs_writer_find(writer_name);
    int rc;
    if (!writer)
        return cli_fail(err, BS_ERR_INTERNAL, "no writer named %s", writer_name);
    if ((rc = cli_outfile_open(&out, path, err)))
        return rc;
    if ((rc = writer->write(out.file, res, cfg, err))) {
        cli_outfile_abort(&out);
        /* The writers do not know the file name; say which file failed. */
        if (strncmp(err->message, path, strlen(path)) != 0) {
            bs_error why = *err;
            cli_fail(err, rc, "%s: %s", path, why.message);
        }
        return rc;
    }
    return cli_outfile_commit(&out, err);
}

int cli_prepare_file_dir(const char *path, bs_error *err)
{
    char dir[TEMP_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        return cli_prepare_dir(".", err);
    if (slash == path)
        return cli_prepare_dir("/", err);
    if ((size_t)(slash - path) >= sizeof dir)
        return cli_fail(err, BS_ERR_IO, "%s: path too long", path);
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    return cli_prepare_dir(dir, err);
}

/* ------------------------------------------------------------ output sets */

void cli_outset_init(cli_outset *set)
{
    memset(set, 0, sizeof *set);
}

static int is_device(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

/* Two members with one name would overwrite each other at commit. */
static int named_twice(const cli_outset *set, const char *path, bs_error *err)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->members[i].file.path, path) == 0)
            return cli_fail(err, BS_ERR_INVALID,
                            "%s: named twice among the output files of one command (for "
                            "example --trace NAME.dat beside --timeline NAME.png)",
                            path);
    return BS_OK;
}

/* Checks that path may join the set (room left, not named twice) and
 * clears the next member for it; the caller fills it and counts it. */
static int reserve_member(cli_outset *set, const char *path, bs_error *err)
{
    int rc;
    if (set->count >= CLI_OUTSET_MAX)
        return cli_fail(err, BS_ERR_INTERNAL, "%s: too many output files in one set", path);
    if ((rc = named_twice(set, path, err)))
        return rc;
    memset(&set->members[set->count], 0, sizeof set->members[set->count]);
    return BS_OK;
}

int cli_outset_add(cli_outset *set, const char *path, FILE **file, bs_error *err)
{
    int rc;
    if ((rc = reserve_member(set, path, err)))
        return rc;
    struct cli_outset_member *m = &set->members[set->count];
    if ((rc = cli_outfile_open(&m->file, path, err)))
        return rc;
    *file = m->file.file;
    return (int)set->count++;
}

int cli_outset_add_external(cli_outset *set, const char *path, cli_outset_check check,
                            bs_error *err)
{
    int rc;
    if ((rc = reserve_member(set, path, err)))
        return rc;
    struct cli_outset_member *m = &set->members[set->count];
    m->external = 1;
    m->check = check;
    m->file.slot = -1;
    if (strlen(path) + 40 >= TEMP_PATH_MAX)
        return cli_fail(err, BS_ERR_IO, "%s: path too long", path);
    memcpy(m->file.path, path, strlen(path) + 1);
    /* Even for a device target the other program writes a temporary file:
     * its output is checked before a byte reaches the device. */
    if ((m->file.slot = cli_temp_name(m->file.temp, sizeof m->file.temp, path)) < 0)
        return cli_fail(err, BS_ERR_IO, "%s: path too long or too many output files", path);
    return (int)set->count++;
}

const char *cli_outset_staged(const cli_outset *set, int index)
{
    const cli_outfile *f = &set->members[index].file;
    return f->temp[0] ? f->temp : f->path;
}

const char *cli_outset_target(const cli_outset *set, int index)
{
    return set->members[index].file.path;
}

void cli_outset_abort(cli_outset *set)
{
    for (size_t i = 0; i < set->count; i++) {
        cli_outfile *f = &set->members[i].file;
        if (set->members[i].external)
            cli_temp_release(f->slot, f->temp, 1);
        else
            cli_outfile_abort(f);
        f->slot = -1;
    }
    set->count = 0;
}

/* Copies the finished temporary file src into the device dst. */
static int copy_to_device(const char *src, const char *dst, bs_error *err)
{
    char buf[65536];
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
    int failed = !in || !out;
    size_t n;
    while (!failed && (n = fread(buf, 1, sizeof buf, in)) > 0)
        failed = fwrite(buf, 1, n, out) != n;
    failed |= in && ferror(in);
    if (out)
        failed |= fclose(out) != 0;
    if (in)
        fclose(in);
    return failed ? cli_fail(err, BS_ERR_IO, "%s: write failed: %s", dst,
                             errno ? strerror(errno) : "I/O error")
                  : BS_OK;
}

int cli_outset_commit(cli_outset *set, bs_error *err)
{
    int rc = BS_OK;
    /* On the heap: 256 KiB of names. Without it there are no backups,
     * which only matters if a rename fails midway. */
    char(*backup)[TEMP_PATH_MAX] = malloc(CLI_OUTSET_MAX * sizeof *backup);
    int backup_slot[CLI_OUTSET_MAX];
    size_t renamed = 0;
    /* 1. Every member complete: our files flushed and closed without error,
     *    the other program's files present and checked. */
    for (size_t i = 0; i < set->count; i++) {
        struct cli_outset_member *m = &set->members[i];
        cli_outfile *f = &m->file;
        backup_slot[i] = -1;
        if (!m->external) {
            errno = 0;
            int failed = ferror(f->file) != 0;
            failed |= fclose(f->file) != 0;
            f->file = NULL;
            if (failed && !rc)
                rc = cli_fail(err, BS_ERR_IO, "%s: write failed: %s", f->path,
                              errno ? strerror(errno) : "I/O error");
        } else if (!rc) {
            struct stat st;
            if (stat(f->temp, &st) != 0 || !S_ISREG(st.st_mode))
                rc = cli_fail(err, BS_ERR_IO, "%s: was not written", f->path);
            else if (m->check)
                rc = m->check(f->temp, f->path, err);
        }
    }
    if (rc)
        goto error;
    /* 2. Backups of the regular files about to be replaced, so that a
     *    rename failing midway can put the earlier ones back. */
    for (size_t i = 0; i < set->count; i++) {
        cli_outfile *f = &set->members[i].file;
        struct stat st;
        if (!backup || !f->temp[0] || is_device(f->path) || lstat(f->path, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        backup_slot[i] = cli_temp_name(backup[i], sizeof backup[i], f->path);
        if (backup_slot[i] >= 0 && link(f->path, backup[i]) != 0) {
            cli_temp_release(backup_slot[i], backup[i], 0);
            backup_slot[i] = -1;
        }
    }
    /* 3. The renames: the commit point of each member. */
    for (; renamed < set->count; renamed++) {
        struct cli_outset_member *m = &set->members[renamed];
        cli_outfile *f = &m->file;
        if (!f->temp[0])
            continue; /* written directly */
        if (m->external && is_device(f->path)) {
            if ((rc = copy_to_device(f->temp, f->path, err)))
                goto undo;
            continue;
        }
        if (rename(f->temp, f->path) != 0) {
            rc = cli_fail(err, BS_ERR_IO, "%s: cannot write: %s", f->path, strerror(errno));
            goto undo;
        }
        f->temp[0] = '\0'; /* nothing left to remove */
    }
    for (size_t i = 0; i < set->count; i++)
        if (backup_slot[i] >= 0)
            cli_temp_release(backup_slot[i], backup[i], 1);
    cli_outset_abort(set); /* releases the slots; the temporary names are gone */
    free(backup);
    return BS_OK;
undo:
    for (size_t i = 0; i < renamed; i++) {
        cli_outfile *f = &set->members[i].file;
        if (set->members[i].external && is_device(f->path))
            continue;
        if (backup_slot[i] >= 0) {
            rename(backup[i], f->path);
            cli_temp_release(backup_slot[i], backup[i], 0);
            backup_slot[i] = -1;
        } else if (!f->temp[0] && !is_device(f->path)) {
            unlink(f->path); /* it did not exist before */
        }
    }
    for (size_t i = 0; i < set->count; i++)
        if (backup_slot[i] >= 0)
            cli_temp_release(backup_slot[i], backup[i], 1);
error:
    cli_outset_abort(set);
    free(backup);
    return rc;
}

/* Reads the last n bytes of path into buf; returns how many were read. */
static size_t read_tail(const char *path, unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    size_t got = 0;
    if (!f)
        return 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, size > (long)n ? size - (long)n : 0, SEEK_SET) == 0)
            got = fread(buf, 1, n, f);
    }
    fclose(f);
    return got;
}

int cli_check_png(const char *temp_path, const char *target, bs_error *err)
{
    /* The IEND chunk: zero length, type IEND, its fixed CRC. */
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    unsigned char head[8] = {0}, tail[12];
    FILE *f = fopen(temp_path, "rb");
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    if (got != sizeof head || memcmp(head, magic, sizeof magic) != 0 ||
        read_tail(temp_path, tail, sizeof tail) != sizeof tail ||
        memcmp(tail, iend, sizeof iend) != 0)
        return cli_fail(err, BS_ERR_IO,
                        "%s: gnuplot wrote an incomplete PNG (no IEND chunk at its end; is the "
                        "disk full?); the earlier file, if any, was left as it was",
                        target);
    return BS_OK;
}

int cli_check_svg(const char *temp_path, const char *target, bs_error *err)
{
    unsigned char tail[64];
    size_t n = read_tail(temp_path, tail, sizeof tail);
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == ' ' || tail[n - 1] == '\r' ||
                     tail[n - 1] == '\t'))
        n--;
    if (n < 6 || memcmp(tail + n - 6, "</svg>", 6) != 0)
        return cli_fail(err, BS_ERR_IO,
                        "%s: gnuplot wrote an incomplete SVG (no closing </svg>; is the disk "
                        "full?); the earlier file, if any, was left as it was",
                        target);
    return BS_OK;
}

int cli_check_file_dir(const char *path, bs_error *err)
{
    char dir[TEMP_PATH_MAX];
    const char *slash = strrchr(path, '/');
    struct stat st;
    if (!*path)
        return cli_fail(err, BS_ERR_IO, "an empty output file name");
    if (strlen(path) + 40 >= TEMP_PATH_MAX)
        return cli_fail(err, BS_ERR_IO, "%s: path too long", path);
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_fail(err, BS_ERR_IO, "%s: is a directory", path);
    /* Walk up to the nearest part of the path that exists. */
    for (;;) {
        if (stat(dir, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return cli_fail(err, BS_ERR_IO, "%s: not a directory (so %s cannot be written)",
                                dir, path);
            if (access(dir, W_OK | X_OK) != 0)
                return cli_fail(err, BS_ERR_IO, "%s: cannot write in %s: %s", path, dir,
                                strerror(errno));
            return BS_OK;
        }
        if (errno != ENOENT)
            return cli_fail(err, BS_ERR_IO, "%s: %s: %s", path, dir, strerror(errno));
        char *up = strrchr(dir, '/');
        if (!up)
            snprintf(dir, sizeof dir, ".");
        else if (up == dir)
            dir[1] = '\0';
        else
            *up = '\0';
    }
}
