/*
 * gnuplot.c - writing gnuplot scripts and running gnuplot headless.
 *
 * gnuplot runs as a child in the chart's directory with the script's
 * basename, exactly as a user would rerun it, and draws into a temporary
 * file named through -e "outfile='...'"; only a finished image is renamed
 * into place, so a failed or interrupted draw leaves no partial picture.
 * The child's exec failure is reported as exit status 127, which is how a
 * missing gnuplot is told apart from a script error.
 */
#include "gnuplot.h"
#include "outfile.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

void cli_gnuplot_quote(FILE *gp, const char *s)
{
    fputc('\'', gp);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', gp); /* '' is a quote inside a single-quoted string */
        fputc(*s, gp);
    }
    fputc('\'', gp);
}

void cli_gnuplot_preamble(FILE *gp, const char *stem, cli_image_format format, int width,
                          int height)
{
    char image[4200];
    snprintf(image, sizeof image, "%s.%s", stem, cli_image_extension(format));
    fprintf(gp, "# Written by bubblesim %s. Restyle freely, then redraw with\n", BS_VERSION);
    fprintf(gp, "#   gnuplot %s.gp\n# in this directory; it reads %s.dat and writes %s.\n", stem,
            stem, image);
    fputs("if (!exists(\"outfile\")) outfile = ", gp);
    cli_gnuplot_quote(gp, image);
    fputc('\n', gp);
    if (format == CLI_IMAGE_SVG)
        fprintf(gp, "set terminal svg size %d,%d dynamic font 'Sans,11' background rgb 'white'\n",
                width, height);
    else
        fprintf(gp, "set terminal pngcairo size %d,%d font 'Sans,10' noenhanced\n", width, height);
    fputs("set output outfile\n"
          "set termoption noenhanced\n"
          "set border lw 1 lc rgb '#444444'\n"
          "set grid lc rgb '#dddddd' lw 1\n"
          "set key noautotitle\n",
          gp);
}

int cli_gnuplot_render(const char *dir, const char *stem, cli_image_format format, bs_error *err)
{
    char image[4096], temp[4096], define[4200], script[4200];
    int n = snprintf(image, sizeof image, "%s/%s.%s", dir, stem, cli_image_extension(format));
    if (n < 0 || (size_t)n >= sizeof image)
        return cli_fail(err, BS_ERR_IO, "%s/%s: path too long", dir, stem);
    int slot = cli_temp_name(temp, sizeof temp, image);
    if (slot < 0)
        return cli_fail(err, BS_ERR_IO, "%s: path too long", image);
    const char *temp_base = strrchr(temp, '/') ? strrchr(temp, '/') + 1 : temp;
    snprintf(define, sizeof define, "outfile='%s'", temp_base);
    snprintf(script, sizeof script, "%s.gp", stem);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cli_temp_release(slot, temp, 0);
        return cli_fail(err, BS_ERR_IO, "cannot start gnuplot: %s", strerror(errno));
    }
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(126);
        execlp("gnuplot", "gnuplot", "-e", define, script, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            cli_temp_release(slot, temp, 1);
            return cli_fail(err, BS_ERR_IO, "waiting for gnuplot: %s", strerror(errno));
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        cli_temp_release(slot, temp, 1);
        return cli_fail(err, BS_ERR_IO,
                        "gnuplot not found on PATH, so %s was not drawn; the script %s/%s.gp and "
                        "its data %s/%s.dat were written: install gnuplot (apt-get install "
                        "gnuplot-nox) and run `gnuplot %s.gp` in %s",
                        image, dir, stem, dir, stem, stem, dir);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cli_temp_release(slot, temp, 1);
        return cli_fail(err, BS_ERR_INTERNAL,
                        "gnuplot failed on %s/%s.gp (%s %d); no image written", dir, stem,
                        WIFEXITED(status) ? "exit status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    if (rename(temp, image) != 0) {
        int e = errno;
        cli_temp_release(slot, temp, 1);
        return cli_fail(err, BS_ERR_IO, "%s: cannot write: %s", image, strerror(e));
    }
    cli_temp_release(slot, temp, 0);
    return BS_OK;
}
