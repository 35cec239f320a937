/*
 * svg.c - bar charts for slm-perf --svg: a title, panels side by side (each
 * a test or a measure with its own y axis, grid and label), one coloured
 * bar per bundle with its value and error bar, and a legend naming the
 * bundles. Plain SVG 1.1 that browsers and rsvg-convert render.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "perf.h"

#define PANEL_H 300   /* plot area height */
#define TOP 70        /* title and panel titles */
#define LEFT 70       /* y axis labels */
#define BAR_SLOT 64
#define BAR_W 40
#define GAP 30

static const char *const palette[] = {
	"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
	"#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
};

static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* A tick step of 1, 2, 2.5 or 5 times a power of ten giving about 5 ticks. */
static double nice_step(double max)
{
	if (!(max > 0))
		return 1;
	double raw = max / 5, p = pow(10, floor(log10(raw))), m = raw / p;
	return p * (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10);
}

/* A bar's value: four significant digits. */
static void fmt_num(char *buf, size_t cap, double v)
{
	if (v != 0 && fabs(v) < 1e-3)
		snprintf(buf, cap, "%.2e", v);
	else
		snprintf(buf, cap, "%.4g", v);
}

/* An axis tick: as many decimals as the step needs, the same for all. */
static int tick_decimals(double step)
{
	for (int d = 0; d < 6; d++) {
		double s = step * pow(10, d);
		if (fabs(s - round(s)) < 1e-6 * s)
			return d;
	}
	return 6;
}

static int panel_width(const svg_panel *p)
{
	int w = LEFT + p->nbars * BAR_SLOT + 20;
	return w < 260 ? 260 : w;
}

static void panel(FILE *f, const svg_panel *p, int x0, const char *const *series)
{
	int w = panel_width(p);
	double max = 0;
	for (int i = 0; i < p->nbars; i++) {
		double top = p->bars[i].value + (p->bars[i].err > 0 ? p->bars[i].err : 0);
		if (top > max)
			max = top;
	}
	double step = nice_step(max * 1.1);
	double ymax = ceil(max * 1.1 / step) * step;
	if (!(ymax > 0))
		ymax = step;
	int px = x0 + LEFT, pw = w - LEFT - 20, y0 = TOP + PANEL_H;
	fprintf(f, "<g>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"14\" "
		   "font-weight=\"bold\">", px + pw / 2, TOP - 14);
	esc(f, p->title);
	fputs("</text>\n", f);
	/* grid and y ticks */
	for (int k = 0;; k++) {
		double v = k * step;
		if (v > ymax + step * 1e-6)
			break;
		double y = y0 - v / ymax * PANEL_H;
		char num[32];
		snprintf(num, sizeof num, "%.*f", tick_decimals(step), v);
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>\n",
			px, y, px + pw, y, k ? "#e0e0e0" : "#333");
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
			px - 6, y + 4, num);
	}
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", px, TOP,
		px, y0);
	fprintf(f, "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"middle\" "
		   "font-size=\"12\">", x0 + 16, TOP + PANEL_H / 2);
	esc(f, p->ylabel ? p->ylabel : "");
	fputs("</text>\n", f);
	/* bars */
	int slot = pw / (p->nbars > 0 ? p->nbars : 1);
	for (int i = 0; i < p->nbars; i++) {
		const svg_bar *b = &p->bars[i];
		double h = b->value / ymax * PANEL_H;
		if (h < 0)
			h = 0;
		int bw = slot * 5 / 8 < BAR_W ? slot * 5 / 8 : BAR_W;
		double cx = px + slot * i + slot / 2.0;
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\">"
			   "<title>", cx - bw / 2.0, y0 - h, bw, h,
			palette[b->series % (int)(sizeof palette / sizeof palette[0])]);
		esc(f, series[b->series]);
		fputs("</title></rect>\n", f);
		double ytop = y0 - h;
		if (b->err > 0) {
			double e = b->err / ymax * PANEL_H;
			double lo = y0 - h + e > y0 ? y0 : y0 - h + e;
			ytop = y0 - h - e;
			fprintf(f, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" "
				   "stroke=\"#222\" stroke-width=\"1.5\" fill=\"none\"/>\n",
				cx, ytop, lo, cx - 6, ytop, cx + 6, cx - 6, lo, cx + 6);
		}
		char num[32];
		fmt_num(num, sizeof num, b->value);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n",
			cx, ytop - 5, num);
	}
	fputs("</g>\n", f);
}

void svg_write(const char *path, const char *title, const svg_panel *panels, int npanels,
	       const char *const *series, int nseries)
{
	slm_afile af;
	slm_err err;
	if (slm_afile_open(&af, path, &err) < 0)
		slm_die_err(&err);
	FILE *f = af.fp;
	int width = GAP;
	for (int i = 0; i < npanels; i++)
		width += panel_width(&panels[i]) + GAP;
	/* legend: one row per bundle under the plots */
	int legend_y = TOP + PANEL_H + 40;
	int height = legend_y + 22 * nseries + 20;
	if (width < 480)
		width = 480;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
		   "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, "
		   "Arial, sans-serif\">\n",
		width, height, width, height);
	fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width, height);
	fprintf(f, "<text x=\"%d\" y=\"28\" text-anchor=\"middle\" font-size=\"18\" "
		   "font-weight=\"bold\">", width / 2);
	esc(f, title);
	fputs("</text>\n", f);
	int x = GAP;
	for (int i = 0; i < npanels; i++) {
		panel(f, &panels[i], x, series);
		x += panel_width(&panels[i]) + GAP;
	}
	for (int s = 0; s < nseries; s++) {
		int y = legend_y + 22 * s;
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>\n", GAP + LEFT,
			y, palette[s % (int)(sizeof palette / sizeof palette[0])]);
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\">", GAP + LEFT + 22, y + 12);
		esc(f, series[s]);
		fputs("</text>\n", f);
	}
	fputs("</svg>\n", f);
	if (ferror(f)) {
		slm_afile_abort(&af);
		slm_die(EX_IOERR, "%s: write error", path);
	}
	if (slm_afile_commit(&af, &err) < 0)
		slm_die_err(&err);
}
