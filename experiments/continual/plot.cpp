#include "experiments/continual/plot.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <stdexcept>

#include "engine/io.h"

namespace continual::plot {

Color palette(size_t i) {
  static constexpr Color colors[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                     {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                     {188, 189, 34},  {23, 190, 207}};
  return colors[i % std::size(colors)];
}

Color lighten(Color c, double amount) {
  auto mix = [&](uint8_t v) { return static_cast<uint8_t>(std::lround(v + (255 - v) * amount)); };
  return {mix(c.r), mix(c.g), mix(c.b)};
}

Color colormap(double v) {
  // Five viridis anchors, linearly interpolated.
  static constexpr Color anchors[] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  const double t = std::clamp(std::isfinite(v) ? v : 0.0, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  auto mix = [&](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a + (b - a) * f)); };
  return {mix(anchors[i].r, anchors[i + 1].r), mix(anchors[i].g, anchors[i + 1].g),
          mix(anchors[i].b, anchors[i + 1].b)};
}

// ---- canvas ------------------------------------------------------------------

namespace {

// DejaVu Sans (Debian's fonts-dejavu-core); fontconfig substitutes a sans
// face where it is missing.
constexpr const char* kFont = "DejaVu Sans";
constexpr double kPixelsPerScale = 7;  // font size of text at scale 1

void set_color(cairo_t* cr, Color c) { cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0); }

void set_font(cairo_t* cr, double scale) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, kPixelsPerScale * scale);
}

// A context on a 1x1 image, for measuring text outside any canvas.
cairo_t* measuring_context() {
  static cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
  static cairo_t* cr = cairo_create(surface);
  return cr;
}

cairo_status_t append_bytes(void* closure, const unsigned char* data, unsigned int length) {
  auto* out = static_cast<std::vector<char>*>(closure);
  out->insert(out->end(), data, data + length);
  return CAIRO_STATUS_SUCCESS;
}

void check(cairo_status_t status, const std::filesystem::path& path, const char* what) {
  if (status != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error("cannot write " + path.string() + ": " + what + ": " + cairo_status_to_string(status));
}

}  // namespace

struct Canvas::Surface {
  cairo_surface_t* recording = nullptr;
  cairo_t* context = nullptr;
  cairo_surface_t* raster = nullptr;  // pixel()'s rasterisation, until the next drawing
  ~Surface() {
    if (raster) cairo_surface_destroy(raster);
    if (context) cairo_destroy(context);
    if (recording) cairo_surface_destroy(recording);
  }
  // The context to draw with; drawing makes the kept rasterisation stale.
  cairo_t* draw() {
    if (raster) cairo_surface_destroy(raster);
    raster = nullptr;
    return context;
  }
  // Replays the recording onto `target`, scaled.
  void paint_onto(cairo_surface_t* target, double scale) const {
    cairo_t* out = cairo_create(target);
    cairo_scale(out, scale, scale);
    cairo_set_source_surface(out, recording, 0, 0);
    cairo_paint(out);
    cairo_destroy(out);
  }
};

Canvas::Canvas(int width, int height, Color background)
    : width_(width), height_(height), surface_(std::make_unique<Surface>()) {
  if (width <= 0 || height <= 0)
    throw std::invalid_argument("plot::Canvas: size " + std::to_string(width) + "x" + std::to_string(height));
  const cairo_rectangle_t extents{0, 0, static_cast<double>(width), static_cast<double>(height)};
  surface_->recording = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &extents);
  surface_->context = cairo_create(surface_->recording);
  fill_rect(0, 0, width, height, background);
}

Canvas::~Canvas() = default;
Canvas::Canvas(Canvas&&) noexcept = default;
Canvas& Canvas::operator=(Canvas&&) noexcept = default;

Color Canvas::pixel(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_)
    throw std::out_of_range("plot::Canvas::pixel: (" + std::to_string(x) + ", " + std::to_string(y) + ") outside " +
                            std::to_string(width_) + "x" + std::to_string(height_));
  if (!surface_->raster) {
    surface_->raster = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width_, height_);
    surface_->paint_onto(surface_->raster, 1);
    cairo_surface_flush(surface_->raster);
  }
  cairo_surface_t* image = surface_->raster;
  const unsigned char* row = cairo_image_surface_get_data(image) + y * cairo_image_surface_get_stride(image);
  uint32_t value = 0;
  std::copy_n(row + 4 * x, 4, reinterpret_cast<unsigned char*>(&value));  // native-endian xRGB
  return {static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)};
}

void Canvas::fill_rect(double x0, double y0, double x1, double y1, Color color) {
  cairo_t* cr = surface_->draw();
  set_color(cr, color);
  cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
  cairo_fill(cr);
}

void Canvas::rect_outline(double x0, double y0, double x1, double y1, Color color) {
  cairo_t* cr = surface_->draw();
  set_color(cr, color);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, x1 - x0 - 1, y1 - y0 - 1);
  cairo_stroke(cr);
}

void Canvas::line(double x0, double y0, double x1, double y1, Color color, double thickness) {
  polyline({{x0, y0}, {x1, y1}}, color, thickness);
}

void Canvas::polyline(const std::vector<std::pair<double, double>>& points, Color color, double thickness) {
  if (points.size() < 2) return;
  cairo_t* cr = surface_->draw();
  set_color(cr, color);
  cairo_set_line_width(cr, thickness);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  cairo_move_to(cr, points[0].first, points[0].second);
  for (size_t i = 1; i < points.size(); ++i) cairo_line_to(cr, points[i].first, points[i].second);
  cairo_stroke(cr);
}

void Canvas::marker(double x, double y, double radius, Color color) {
  cairo_t* cr = surface_->draw();
  cairo_new_sub_path(cr);
  cairo_arc(cr, x, y, radius, 0, 2 * std::numbers::pi);
  set_color(cr, color);
  cairo_fill_preserve(cr);
  set_color(cr, kWhite);
  cairo_set_line_width(cr, 1.5);
  cairo_stroke(cr);
}

void Canvas::text(double x, double y, const std::string& s, Color color, double scale) {
  cairo_t* cr = surface_->draw();
  set_font(cr, scale);
  cairo_font_extents_t font;
  cairo_font_extents(cr, &font);
  set_color(cr, color);
  cairo_move_to(cr, x, y + font.ascent);
  cairo_show_text(cr, s.c_str());
  cairo_new_path(cr);
}

void Canvas::text_vertical(double x, double y, const std::string& s, Color color, double scale) {
  cairo_t* cr = surface_->draw();
  set_font(cr, scale);
  cairo_font_extents_t font;
  cairo_font_extents(cr, &font);
  cairo_save(cr);
  // The baseline runs upwards at x + ascent, from the box's bottom edge.
  cairo_translate(cr, x + font.ascent, y + text_width(s, scale));
  cairo_rotate(cr, -std::numbers::pi / 2);
  set_color(cr, color);
  cairo_move_to(cr, 0, 0);
  cairo_show_text(cr, s.c_str());
  cairo_new_path(cr);
  cairo_restore(cr);
}

double Canvas::text_width(const std::string& s, double scale) {
  cairo_t* cr = measuring_context();
  set_font(cr, scale);
  cairo_text_extents_t extents;
  cairo_text_extents(cr, s.c_str(), &extents);
  return extents.x_advance;
}

double Canvas::text_height(double scale) {
  cairo_t* cr = measuring_context();
  set_font(cr, scale);
  cairo_font_extents_t font;
  cairo_font_extents(cr, &font);
  return font.ascent + font.descent;
}

void Canvas::save_png(const std::filesystem::path& path) const {
  check(cairo_status(surface_->context), path, "drawing failed");
  constexpr int kScale = 2;
  cairo_surface_t* image = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width_ * kScale, height_ * kScale);
  surface_->paint_onto(image, kScale);
  std::vector<char> png;
  const cairo_status_t status = cairo_surface_write_to_png_stream(image, append_bytes, &png);
  cairo_surface_destroy(image);
  check(status, path, "PNG encoding failed");
  engine::write_file_atomic(path, png);
}

void Canvas::save_svg(const std::filesystem::path& path) const {
  check(cairo_status(surface_->context), path, "drawing failed");
  std::vector<char> svg;
  cairo_surface_t* target = cairo_svg_surface_create_for_stream(append_bytes, &svg, width_, height_);
  surface_->paint_onto(target, 1);
  cairo_surface_finish(target);
  const cairo_status_t status = cairo_surface_status(target);
  cairo_surface_destroy(target);
  check(status, path, "SVG output failed");
  engine::write_file_atomic(path, svg);
}

void Canvas::save_pdf(const std::filesystem::path& path) const {
  check(cairo_status(surface_->context), path, "drawing failed");
  std::vector<char> pdf;
  cairo_surface_t* target = cairo_pdf_surface_create_for_stream(append_bytes, &pdf, width_, height_);
  cairo_pdf_surface_set_metadata(target, CAIRO_PDF_METADATA_CREATOR, "lora-continual");
  surface_->paint_onto(target, 1);
  cairo_surface_finish(target);
  const cairo_status_t status = cairo_surface_status(target);
  cairo_surface_destroy(target);
  check(status, path, "PDF output failed");
  engine::write_file_atomic(path, pdf);
}

void Canvas::save_all(const std::filesystem::path& stem) const {
  for (const char* extension : {".png", ".svg", ".pdf"}) {
    std::filesystem::path path = stem;
    path += extension;
    if (extension[1] == 'p' && extension[2] == 'n') save_png(path);
    else if (extension[1] == 's') save_svg(path);
    else save_pdf(path);
  }
}

// ---- ticks -----------------------------------------------------------------------

std::vector<double> nice_ticks(double low, double high, int count) {
  if (!(high > low)) high = low + 1;
  const double raw = (high - low) / std::max(1, count);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  // Whole multiples of the step, so that labels print without rounding noise.
  std::vector<double> ticks;
  const int64_t first = static_cast<int64_t>(std::floor(low / step + 1e-9));
  const int64_t last = static_cast<int64_t>(std::ceil(high / step - 1e-9));
  for (int64_t k = first; k <= last; ++k) ticks.push_back(static_cast<double>(k) * step);
  return ticks;
}

std::vector<double> log_ticks(double low, double high) {
  if (!(low > 0)) throw std::invalid_argument("plot: a log axis needs positive values, got " + std::to_string(low));
  if (!(high > low)) high = low;
  const int first = static_cast<int>(std::floor(std::log10(low) + 1e-9));
  int last = static_cast<int>(std::ceil(std::log10(high) - 1e-9));
  if (last == first) ++last;
  std::vector<double> ticks;
  const bool fine = last - first < 3;
  for (int k = first; k <= last; ++k) {
    const double decade = std::pow(10.0, k);
    ticks.push_back(decade);
    if (fine && k < last) ticks.push_back(2 * decade), ticks.push_back(5 * decade);
  }
  return ticks;
}

std::string tick_label(double value, double step) {
  char buffer[32];
  if (value == 0) return "0";
  const double magnitude = std::max(std::abs(value), std::abs(step));
  if (magnitude >= 1e6)
    std::snprintf(buffer, sizeof buffer, "%gM", std::round(value / 1e4) / 100);
  else if (magnitude >= 1e4)
    std::snprintf(buffer, sizeof buffer, "%gk", std::round(value / 10) / 100);
  else {
    const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  }
  return buffer;
}

// ---- axes shared by the charts -------------------------------------------------------

namespace {

constexpr double kLabel = 2;     // scale of tick labels, axis labels and legends
constexpr double kTitle = 2.6;   // scale of titles (shrunk to fit the width)
constexpr double kNote = 1.7;    // scale of the note under the x label
constexpr double kMargin = 14;

// Data value to pixel along one axis, linear or log10.
struct Scale {
  double lo, hi;  // data range
  double p0, p1;  // pixels of lo and hi
  bool log = false;
  double operator()(double v) const {
    const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
    return p0 + t * (p1 - p0);
  }
  bool drawable(double v) const { return std::isfinite(v) && (!log || v > 0); }
};

double title_scale(const std::string& title, int width) {
  const double fits = kTitle * (width - 2 * kMargin) / std::max(1.0, Canvas::text_width(title, kTitle));
  return std::min(kTitle, fits);
}

// The frame of a chart: where the plot area goes, leaving room for the title,
// the y tick labels and label, the x tick labels and label, the note and the legend.
struct Frame {
  double left, top, right, bottom;
};

Frame layout(int width, int height, const std::string& title, double widest_y_tick, double legend_width,
             bool with_note) {
  Frame f;
  f.top = kMargin + Canvas::text_height(title_scale(title, width)) + 14;
  f.left = kMargin + Canvas::text_height(kLabel) + 10 + widest_y_tick + 10;
  f.right = width - kMargin - legend_width;
  f.bottom = height - kMargin - 2 * Canvas::text_height(kLabel) - 14 - (with_note ? Canvas::text_height(kNote) + 4 : 0);
  return f;
}

void draw_title_and_labels(Canvas& c, const Frame& f, const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::string& note = "") {
  const double ts = title_scale(title, c.width());
  c.text((c.width() - Canvas::text_width(title, ts)) / 2, kMargin, title, kBlack, ts);
  const double x_label_y = f.bottom + Canvas::text_height(kLabel) + 14;
  c.text((f.left + f.right - Canvas::text_width(x_label, kLabel)) / 2, x_label_y, x_label, kBlack, kLabel);
  if (!note.empty())
    c.text((f.left + f.right - Canvas::text_width(note, kNote)) / 2, x_label_y + Canvas::text_height(kLabel) + 4,
           note, kGrey, kNote);
  c.text_vertical(kMargin, (f.top + f.bottom - Canvas::text_width(y_label, kLabel)) / 2, y_label, kBlack, kLabel);
}

std::vector<std::string> y_tick_labels(const std::vector<double>& ticks, bool log) {
  std::vector<std::string> labels;
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
  for (double t : ticks) labels.push_back(tick_label(t, log ? t : step));
  return labels;
}

double widest(const std::vector<std::string>& texts, double scale) {
  double w = 0;
  for (const std::string& t : texts) w = std::max(w, Canvas::text_width(t, scale));
  return w;
}

void draw_y_ticks(Canvas& c, const Frame& f, const Scale& y, const std::vector<double>& ticks,
                  const std::vector<std::string>& labels) {
  const double h = Canvas::text_height(kLabel);
  for (size_t i = 0; i < ticks.size(); ++i) {
    const double py = y(ticks[i]);
    if (py < f.top - 0.5 || py > f.bottom + 0.5) continue;  // outside a fixed range
    c.line(f.left, py, f.right, py, kLightGrey, 1);
    c.line(f.left - 5, py, f.left, py, kBlack, 1);
    c.text(f.left - 8 - Canvas::text_width(labels[i], kLabel), py - h / 2, labels[i], kBlack, kLabel);
  }
}

void draw_x_tick(Canvas& c, const Frame& f, double px, const std::string& label, bool grid) {
  if (grid) c.line(px, f.top, px, f.bottom, kLightGrey, 1);
  c.line(px, f.bottom, px, f.bottom + 5, kBlack, 1);
  c.text(px - Canvas::text_width(label, kLabel) / 2, f.bottom + 8, label, kBlack, kLabel);
}

// Legend entries stacked in the right margin; each draws its own swatch.
constexpr double kSwatch = 28;
double legend_width(const std::vector<std::string>& names) { return names.empty() ? 0 : widest(names, kLabel) + kSwatch + 30; }

enum class Swatch { line, marker, box };
void draw_legend_entry(Canvas& c, double x, double y, const std::string& name, Color color, Swatch swatch) {
  const double mid = y + Canvas::text_height(kLabel) / 2;
  if (swatch == Swatch::box) c.fill_rect(x, mid - 7, x + kSwatch, mid + 7, color);
  if (swatch == Swatch::line) c.line(x, mid, x + kSwatch, mid, color, 3);
  if (swatch != Swatch::box) c.marker(x + kSwatch / 2, mid, 4.5, color);
  c.text(x + kSwatch + 8, y, name, kBlack, kLabel);
}

}  // namespace

// ---- line chart ----------------------------------------------------------------------

Canvas draw_line_chart(const LineChart& chart, int width, int height) {
  Canvas c(width, height);
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  std::vector<std::string> names;
  for (const Series& s : chart.series) {
    if (s.x.size() != s.y.size() || (!s.y_error.empty() && s.y_error.size() != s.y.size()))
      throw std::invalid_argument("plot: series " + s.name + " has " + std::to_string(s.x.size()) + " x, " +
                                  std::to_string(s.y.size()) + " y and " + std::to_string(s.y_error.size()) +
                                  " error values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double e = s.y_error.empty() || !std::isfinite(s.y_error[i]) ? 0 : s.y_error[i];
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (chart.log_x && s.x[i] <= 0)) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      if (!chart.log_y || s.y[i] - e > 0) y0 = std::min(y0, s.y[i] - e);
      y1 = std::max(y1, s.y[i] + e);
    }
    names.push_back(s.name);
  }
  if (!std::isfinite(x0)) x0 = chart.log_x ? 1 : 0, x1 = chart.log_x ? 10 : 1;
  if (!std::isfinite(y0)) y0 = chart.log_y ? 1 : 0, y1 = chart.log_y ? 10 : 1;
  if (chart.y_min) y0 = *chart.y_min;
  if (chart.y_max) y1 = *chart.y_max;

  const std::vector<double> y_ticks = chart.log_y ? log_ticks(y0, y1) : nice_ticks(y0, y1 > y0 ? y1 : y0 + 1, 6);
  const double y_lo = chart.y_min.value_or(y_ticks.front()), y_hi = chart.y_max.value_or(y_ticks.back());
  const std::vector<std::string> y_labels = y_tick_labels(y_ticks, chart.log_y);
  const Frame f = layout(width, height, chart.title, widest(y_labels, kLabel), legend_width(names), !chart.note.empty());
  const Scale y{y_lo, y_hi > y_lo ? y_hi : y_lo + 1, f.bottom, f.top, chart.log_y};

  Scale x{x0, x1, f.left, f.right, chart.log_x};
  std::vector<double> x_ticks;
  if (chart.log_x) {
    x_ticks = log_ticks(x0, x1);
    x.lo = x_ticks.front(), x.hi = x_ticks.back();
    // A margin of a tenth of a decade, so that points on the edges keep their markers whole.
    const double pad = 0.1;
    x.lo /= std::pow(10.0, pad), x.hi *= std::pow(10.0, pad);
  } else {
    if (x1 <= x0) x0 -= 0.5, x1 += 0.5;
    x_ticks = nice_ticks(x0, x1, 8);
    const double pad = (x1 - x0) * 0.05;
    x.lo = x0 - pad, x.hi = x1 + pad;
  }
  draw_y_ticks(c, f, y, y_ticks, y_labels);
  for (double t : x_ticks) {
    if (chart.integer_x && !chart.log_x && t != std::round(t)) continue;
    if (x(t) < f.left - 0.5 || x(t) > f.right + 0.5) continue;
    draw_x_tick(c, f, x(t), tick_label(t, chart.log_x ? t : chart.integer_x ? 1 : x_ticks[1] - x_ticks[0]), chart.log_x);
  }
  for (const Series& s : chart.series) {
    std::vector<std::pair<double, double>> points;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (x.drawable(s.x[i]) && y.drawable(s.y[i])) points.push_back({x(s.x[i]), y(s.y[i])});
    if (s.lines) c.polyline(points, s.color, 2.5);
    for (size_t i = 0; i < s.y_error.size(); ++i) {
      const double e = s.y_error[i];
      if (!(e > 0) || !x.drawable(s.x[i]) || !y.drawable(s.y[i] + e) || !y.drawable(s.y[i] - e)) continue;
      const double px = x(s.x[i]), top = y(s.y[i] + e), bottom = y(s.y[i] - e);
      c.line(px, top, px, bottom, s.color, 1.5);
      c.line(px - 5, top, px + 5, top, s.color, 1.5);
      c.line(px - 5, bottom, px + 5, bottom, s.color, 1.5);
    }
    for (const auto& [px, py] : points) c.marker(px, py, s.lines ? 4.5 : 6, s.color);
  }
  c.rect_outline(f.left, f.top, f.right + 1, f.bottom + 1, kBlack);
  const double row = Canvas::text_height(kLabel) + 8;
  for (size_t i = 0; i < chart.series.size(); ++i)
    draw_legend_entry(c, f.right + 16, f.top + i * row, chart.series[i].name, chart.series[i].color,
                      chart.series[i].lines ? Swatch::line : Swatch::marker);
  draw_title_and_labels(c, f, chart.title, chart.x_label, chart.y_label, chart.note);
  return c;
}

// ---- heatmap -------------------------------------------------------------------------------

Canvas draw_heatmap(const Heatmap& map, int width, int height) {
  Canvas c(width, height);
  const size_t rows = map.values.size(), columns = map.column_labels.size();
  if (rows == 0 || columns == 0 || map.row_labels.size() != rows)
    throw std::invalid_argument("plot: heatmap " + map.title + " needs matching rows, row labels and columns");
  // The colour bar and its labels take the legend's place on the right.
  Frame f = layout(width, height, map.title, widest(map.row_labels, kLabel), 30 + 20 + 8 + Canvas::text_width("0.5", kLabel) + 10, false);
  const double cell_w = (f.right - f.left) / columns, cell_h = (f.bottom - f.top) / rows;
  const double h = Canvas::text_height(kLabel);
  for (size_t i = 0; i < rows; ++i) {
    const double y0 = f.top + i * cell_h, y1 = f.top + (i + 1) * cell_h;
    for (size_t j = 0; j < columns; ++j) {
      const double x0 = f.left + j * cell_w, x1 = f.left + (j + 1) * cell_w;
      if (j >= map.values[i].size()) {
        c.fill_rect(x0, y0, x1, y1, kLightGrey);
        continue;
      }
      const double v = map.values[i][j];
      c.fill_rect(x0, y0, x1, y1, colormap(v));
      char label[16];
      std::snprintf(label, sizeof label, "%.3f", v);
      const Color ink = v > 0.6 ? kBlack : kWhite;  // readable on both ends of the colour map
      c.text((x0 + x1 - Canvas::text_width(label, kLabel)) / 2, (y0 + y1 - h) / 2, label, ink, kLabel);
    }
    c.text(f.left - 10 - Canvas::text_width(map.row_labels[i], kLabel), (y0 + y1 - h) / 2, map.row_labels[i], kBlack,
           kLabel);
  }
  for (size_t j = 0; j < columns; ++j) draw_x_tick(c, f, f.left + (j + 0.5) * cell_w, map.column_labels[j], false);
  c.rect_outline(f.left, f.top, f.right + 1, f.bottom + 1, kBlack);
  // Colour bar 0..1 on the right, in 100 bands.
  const double bar_x = f.right + 30;
  constexpr int kBands = 100;
  for (int b = 0; b < kBands; ++b) {
    const double t0 = static_cast<double>(b) / kBands, t1 = static_cast<double>(b + 1) / kBands;
    c.fill_rect(bar_x, f.bottom - t1 * (f.bottom - f.top) - 0.5, bar_x + 20, f.bottom - t0 * (f.bottom - f.top),
                colormap((t0 + t1) / 2));
  }
  c.rect_outline(bar_x, f.top, bar_x + 21, f.bottom + 1, kBlack);
  for (double t : {0.0, 0.5, 1.0})
    c.text(bar_x + 28, f.bottom - t * (f.bottom - f.top) - h / 2, tick_label(t, 0.5), kBlack, kLabel);
  draw_title_and_labels(c, f, map.title, map.x_label, map.y_label);
  return c;
}

// ---- grouped bars ------------------------------------------------------------------

Canvas draw_stacked_bars(const StackedBars& chart, int width, int height) {
  if (chart.log_y && chart.stacked)
    throw std::invalid_argument("plot: bars " + chart.title + ": a log scale needs parts side by side, not stacked");
  Canvas c(width, height);
  const size_t groups = chart.group_labels.size(), parts = chart.part_names.size();
  double top_value = 0, low_value = INFINITY;
  std::vector<std::string> names;
  for (const StackedBars::Bar& bar : chart.bars) {
    if (bar.parts.size() != groups)
      throw std::invalid_argument("plot: bar " + bar.name + " has " + std::to_string(bar.parts.size()) +
                                  " groups, expected " + std::to_string(groups));
    for (const auto& stack : bar.parts) {
      if (stack.size() != parts)
        throw std::invalid_argument("plot: bar " + bar.name + " has a stack of " + std::to_string(stack.size()) +
                                    " parts, expected " + std::to_string(parts));
      double total = 0;
      for (double v : stack) {
        total = chart.stacked ? total + v : std::max(total, v);
        if (v > 0) low_value = std::min(low_value, v);
      }
      top_value = std::max(top_value, total);
    }
    names.push_back(bar.name);
  }
  for (const std::string& p : chart.part_names) names.push_back(p);
  if (!std::isfinite(low_value)) low_value = 1;
  const std::vector<double> ticks =
      chart.log_y ? log_ticks(low_value, std::max(top_value, low_value)) : nice_ticks(0, top_value > 0 ? top_value : 1, 6);
  const std::vector<std::string> labels = y_tick_labels(ticks, chart.log_y);
  const Frame f = layout(width, height, chart.title, widest(labels, kLabel), legend_width(names) + 8, false);
  const Scale y{ticks.front(), ticks.back(), f.bottom, f.top, chart.log_y};
  draw_y_ticks(c, f, y, ticks, labels);
  const double group_w = (f.right - f.left) / std::max<size_t>(1, groups);
  const double bar_w = group_w * 0.8 / std::max<size_t>(1, chart.bars.size());
  // Later parts are lighter shades of the bar's colour.
  auto shade = [](Color color, size_t part) { return lighten(color, 0.5 * static_cast<double>(part)); };
  for (size_t g = 0; g < groups; ++g) {
    for (size_t b = 0; b < chart.bars.size(); ++b) {
      const double x0 = f.left + g * group_w + group_w * 0.1 + b * bar_w;
      const double x1 = x0 + bar_w - 1;
      double base = 0;
      for (size_t p = 0; p < parts; ++p) {
        const double value = chart.bars[b].parts[g][p];
        const Color color = shade(chart.bars[b].color, p);
        if (chart.stacked) {
          c.fill_rect(x0, y(base + value), x1, y(base), color);
          base += value;
        } else if (value > 0) {
          const double w = (x1 - x0) / parts;
          c.fill_rect(x0 + p * w, y(value), x0 + (p + 1) * w, f.bottom, color);
        }
      }
    }
    draw_x_tick(c, f, f.left + (g + 0.5) * group_w, chart.group_labels[g], false);
  }
  c.rect_outline(f.left, f.top, f.right + 1, f.bottom + 1, kBlack);
  const double row = Canvas::text_height(kLabel) + 8;
  double legend_y = f.top;
  for (const StackedBars::Bar& bar : chart.bars) {
    draw_legend_entry(c, f.right + 16, legend_y, bar.name, bar.color, Swatch::box);
    legend_y += row;
  }
  legend_y += row / 2;
  for (size_t p = 0; p < parts; ++p) {
    draw_legend_entry(c, f.right + 16, legend_y, chart.part_names[p] + (chart.stacked && p == 0 ? " (below)" : ""),
                      shade(kGrey, p), Swatch::box);
    legend_y += row;
  }
  draw_title_and_labels(c, f, chart.title, chart.x_label, chart.y_label);
  return c;
}

}  // namespace continual::plot
