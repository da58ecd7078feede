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

#define TEMP_SLOTS 16
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
