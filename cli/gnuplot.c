/*
 * gnuplot.c - running the chart programs of plots/ (see gnuplot.h).
 *
 * gnuplot runs as a child with standard input from /dev/null, drawing into
 * the image's temporary name (an external member of the output set). A
 * close-on-exec pipe tells an exec failure (no gnuplot) apart from gnuplot
 * failing: the child writes errno into it only when exec returned.
 */
#include "gnuplot.h"
#include "quote.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BS_PLOTS_INSTALL_DIR
#define BS_PLOTS_INSTALL_DIR "/usr/local/share/bubblesim/plots"
#endif
#ifndef BS_PLOTS_SOURCE_DIR
#define BS_PLOTS_SOURCE_DIR "plots"
#endif

#define PATH_CAP 4096

cli_image_format cli_image_format_of(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash) || dot == path || (slash && dot == slash + 1))
        return CLI_IMAGE_NONE;
    if (strcmp(dot, ".png") == 0)
        return CLI_IMAGE_PNG;
    if (strcmp(dot, ".svg") == 0)
        return CLI_IMAGE_SVG;
    return CLI_IMAGE_NONE;
}

void cli_gnuplot_data_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c == '"' ? '\'' : c == '\\' ? '/' : c < 0x20 || c == 0x7f ? ' ' : c, f);
    }
    fputc('"', f);
}

const char *cli_image_extension(cli_image_format format)
{
    return format == CLI_IMAGE_SVG ? "svg" : "png";
}

int cli_chart_split(const char *image_path, char *dir, size_t dir_size, char *stem,
                    size_t stem_size)
{
    const char *slash = strrchr(image_path, '/');
    const char *base = slash ? slash + 1 : image_path;
    const char *dot = strrchr(base, '.');
    size_t stem_len = dot ? (size_t)(dot - base) : strlen(base);
    int n = slash ? snprintf(dir, dir_size, "%.*s", (int)(slash - image_path), image_path)
                  : snprintf(dir, dir_size, ".");
    if (n < 0 || (size_t)n >= dir_size || stem_len + 1 > stem_size)
        return -1;
    if (slash == image_path) /* "/x.png": the root directory */
        snprintf(dir, dir_size, "/");
    memcpy(stem, base, stem_len);
    stem[stem_len] = '\0';
    return 0;
}

static int has_programs(const char *dir)
{
    char probe[PATH_CAP + 32];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/timeline.gp", dir);
    return strlen(dir) < PATH_CAP && stat(probe, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_plots_dir(char *buf, size_t size, bs_error *err)
{
    char exe[PATH_CAP];
    const char *env = getenv("BUBBLESIM_PLOTS");
    if (env && *env) {
        if (has_programs(env) && strlen(env) < size) {
            snprintf(buf, size, "%s", env);
            return BS_OK;
        }
        return cli_fail(err, BS_ERR_IO,
                        "BUBBLESIM_PLOTS=%s: no gnuplot programs there (timeline.gp missing)", env);
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            int w = snprintf(buf, size, "%s/../share/bubblesim/plots", exe);
            if (w > 0 && (size_t)w < size && has_programs(buf))
                return BS_OK;
        }
    }
    const char *fixed[] = {BS_PLOTS_INSTALL_DIR, BS_PLOTS_SOURCE_DIR};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (has_programs(fixed[i]) && strlen(fixed[i]) < size) {
            snprintf(buf, size, "%s", fixed[i]);
            return BS_OK;
        }
    }
    return cli_fail(err, BS_ERR_IO,
                    "cannot find bubblesim's gnuplot programs (plots/timeline.gp): looked in "
                    "$BUBBLESIM_PLOTS, EXEDIR/../share/bubblesim/plots, %s and %s",
                    BS_PLOTS_INSTALL_DIR, BS_PLOTS_SOURCE_DIR);
}

/* Copies the program file src into the set member written as f. */
static int copy_program(FILE *f, const char *src, bs_error *err)
{
    char buf[8192];
    size_t n;
    FILE *in = fopen(src, "rb");
    if (!in)
        return cli_fail(err, BS_ERR_IO, "%s: cannot read: %s", src, strerror(errno));
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, f);
    int failed = ferror(in);
    fclose(in);
    return failed ? cli_fail(err, BS_ERR_IO, "%s: read failed", src) : BS_OK;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Writes one shell word for a: "./'NAME'" for a member (NAME.sh runs in
 * the directory of its chart), the quoted text otherwise. */
static int shell_word(FILE *sh, const cli_outset *set, cli_chart_arg a, bs_error *err)
{
    static char word[4 * PATH_CAP + 8];
    const char *s = a.member >= 0 ? base_name(cli_outset_target(set, a.member)) : a.text;
    if (cli_shell_quote(word, sizeof word, s) < 0)
        return cli_fail(err, BS_ERR_IO, "a chart argument is too long");
    fprintf(sh, " %s%s", a.member >= 0 ? "./" : "", word);
    return BS_OK;
}

/* Runs gnuplot -c program args...; returns BS_OK, sets *missing when there
 * is no gnuplot to run, BS_ERR_INTERNAL when it failed. */
static int run_gnuplot(char *const *argv, int *missing, bs_error *err)
{
    int pipefd[2], exec_errno = 0;
    *missing = 0;
    if (pipe(pipefd) != 0)
        return cli_fail(err, BS_ERR_IO, "cannot start gnuplot: %s", strerror(errno));
    fcntl(pipefd[1], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return cli_fail(err, BS_ERR_IO, "cannot start gnuplot: %s", strerror(errno));
    }
    if (pid == 0) {
        close(pipefd[0]);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, STDIN_FILENO);
        execvp("gnuplot", argv);
        int e = errno;
        ssize_t w = write(pipefd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(pipefd[1]);
    while (read(pipefd[0], &exec_errno, sizeof exec_errno) < 0 && errno == EINTR)
        ;
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return cli_fail(err, BS_ERR_IO, "waiting for gnuplot: %s", strerror(errno));
    }
    if (exec_errno) {
        *missing = 1;
        return BS_OK;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return cli_fail(err, BS_ERR_INTERNAL, "gnuplot failed on %s (%s %d); no image written",
                        argv[2], WIFEXITED(status) ? "exit status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return BS_OK;
}

int cli_chart_stage(cli_outset *set, const char *image_path, const char *program,
                    const cli_chart_arg *args, int nargs, bs_error *err)
{
    char dir[PATH_CAP], stem[PATH_CAP], plots[PATH_CAP], src[PATH_CAP + 64];
    char path[2 * PATH_CAP];
    char *argv[4 + CLI_CHART_MAX_ARGS + 1] = {0};
    cli_image_format format = cli_image_format_of(image_path);
    FILE *gp, *sh;
    int rc, image, gp_member, missing = 0;
    if (format == CLI_IMAGE_NONE)
        return cli_fail(err, BS_ERR_INVALID, "%s: expected a .png or .svg file name", image_path);
    if (nargs > CLI_CHART_MAX_ARGS)
        return cli_fail(err, BS_ERR_INTERNAL, "chart %s: too many arguments", program);
    if (cli_chart_split(image_path, dir, sizeof dir, stem, sizeof stem))
        return cli_fail(err, BS_ERR_IO, "%s: path too long", image_path);
    if ((rc = cli_plots_dir(plots, sizeof plots, err)))
        return rc;
    snprintf(src, sizeof src, "%s/%s.gp", plots, program);

    if (snprintf(path, sizeof path, "%s/%s.gp", dir, stem) >= (int)sizeof path)
        return cli_fail(err, BS_ERR_IO, "%s: path too long", image_path);
    if ((rc = gp_member = cli_outset_add(set, path, &gp, err)) < 0 ||
        (rc = copy_program(gp, src, err)))
        return rc;
    if (snprintf(path, sizeof path, "%s/%s.sh", dir, stem) >= (int)sizeof path)
        return cli_fail(err, BS_ERR_IO, "%s: path too long", image_path);
    if ((rc = cli_outset_add(set, path, &sh, err)) < 0)
        return rc;
    if ((rc = image = cli_outset_add_external(
             set, image_path, format == CLI_IMAGE_SVG ? cli_check_svg : cli_check_png, err)) < 0)
        return rc;

    /* NAME.sh: no name or title in its comments, only in quoted words. */
    fprintf(sh,
            "#!/bin/sh\n# Written by bubblesim %s: redraws the chart beside this file.\n"
            "# The program is a copy of bubblesim's plots/%s.gp (restyle it freely);\n"
            "# every argument is a string to gnuplot (ARG1, ARG2, ...), never code.\n"
            "cd -- \"$(dirname -- \"$0\")\" || exit 1\nexec gnuplot -c",
            BS_VERSION, program);
    if ((rc = shell_word(sh, set, CLI_MEMBER(gp_member), err)) ||
        (rc = shell_word(sh, set, CLI_MEMBER(image), err)))
        return rc;
    for (int i = 0; i < nargs; i++)
        if ((rc = shell_word(sh, set, args[i], err)))
            return rc;
    fputc('\n', sh);

    if (set->gnuplot_missing) /* already known: stage the files only */
        goto no_gnuplot;
    /* The arguments as gnuplot gets them now: staged names made safe. */
    static char words[1 + CLI_CHART_MAX_ARGS][PATH_CAP + 8];
    argv[0] = "gnuplot";
    argv[1] = "-c";
    argv[2] = src;
    if (cli_gnuplot_path(words[0], sizeof words[0], cli_outset_staged(set, image)) < 0)
        return cli_fail(err, BS_ERR_IO, "%s: path too long", image_path);
    argv[3] = words[0];
    for (int i = 0; i < nargs; i++) {
        if (args[i].member >= 0) {
            if (cli_gnuplot_path(words[i + 1], sizeof words[i + 1],
                                 cli_outset_staged(set, args[i].member)) < 0)
                return cli_fail(err, BS_ERR_IO, "%s: path too long",
                                cli_outset_target(set, args[i].member));
            argv[4 + i] = words[i + 1];
        } else {
            argv[4 + i] = (char *)args[i].text;
        }
    }
    if ((rc = run_gnuplot(argv, &missing, err)))
        return rc;
    if (!missing)
        return BS_OK;
no_gnuplot:
    if (!set->gnuplot_missing) {
        char word[PATH_CAP + 8];
        set->gnuplot_missing = 1;
        if (snprintf(path, sizeof path, "%s/%s.sh", dir, stem) >= (int)sizeof path ||
            cli_shell_quote(word, sizeof word, path) < 0 ||
            snprintf(set->missing_hint, sizeof set->missing_hint, "%s", word) >=
                (int)sizeof set->missing_hint)
            snprintf(set->missing_hint, sizeof set->missing_hint, "NAME.sh");
    }
    /* Leave the image out of the set: nothing was drawn. */
    set->count--;
    cli_temp_release(set->members[set->count].file.slot, set->members[set->count].file.temp, 1);
    return BS_OK;
}

int cli_chart_missing_error(const cli_outset *set, bs_error *err)
{
    return cli_fail(err, BS_ERR_IO,
                    "gnuplot not found on PATH, so no image was drawn; the chart data, programs "
                    "and scripts were written: install gnuplot (apt-get install gnuplot-nox) and "
                    "run `sh %s`",
                    set->missing_hint);
}

int cli_chart_missing_report(const cli_outset *set)
{
    bs_error err = {{0}};
    return cli_report(cli_chart_missing_error(set, &err), &err);
}
