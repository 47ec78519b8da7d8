#include "experiments/continual/plot.h"

#define STB_IMAGE_WRITE_STATIC  // private copy: other libraries may embed their own
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#include <stb/stb_easy_font.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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

Canvas::Canvas(int width, int height, Color background)
    : width_(width), height_(height), rgb_(static_cast<size_t>(width) * height * 3) {
  if (width <= 0 || height <= 0)
    throw std::invalid_argument("plot::Canvas: size " + std::to_string(width) + "x" + std::to_string(height));
  fill_rect(0, 0, width, height, background);
}

Color Canvas::pixel(int x, int y) const {
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  return {rgb_[i], rgb_[i + 1], rgb_[i + 2]};
}

void Canvas::put(int x, int y, Color color) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  rgb_[i] = color.r;
  rgb_[i + 1] = color.g;
  rgb_[i + 2] = color.b;
}

void Canvas::fill_rect(int x0, int y0, int x1, int y1, Color color) {
  for (int y = std::max(0, y0); y < std::min(height_, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(width_, x1); ++x) put(x, y, color);
}

void Canvas::rect_outline(int x0, int y0, int x1, int y1, Color color) {
  fill_rect(x0, y0, x1, y0 + 1, color);
  fill_rect(x0, y1 - 1, x1, y1, color);
  fill_rect(x0, y0, x0 + 1, y1, color);
  fill_rect(x1 - 1, y0, x1, y1, color);
}

void Canvas::line(double x0, double y0, double x1, double y1, Color color, int thickness) {
  // Steps of at most half a pixel along the segment, a square brush at each.
  const double length = std::hypot(x1 - x0, y1 - y0);
  const int steps = std::max(1, static_cast<int>(std::ceil(length * 2)));
  const int low = -(thickness - 1) / 2, high = thickness / 2;
  for (int s = 0; s <= steps; ++s) {
    const double t = static_cast<double>(s) / steps;
    const int x = static_cast<int>(std::lround(x0 + (x1 - x0) * t));
    const int y = static_cast<int>(std::lround(y0 + (y1 - y0) * t));
    for (int dy = low; dy <= high; ++dy)
      for (int dx = low; dx <= high; ++dx) put(x + dx, y + dy, color);
  }
}

namespace {
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (c < 32 || c > 126) c = '?';
  return out;
}
}  // namespace

template <class Put>
void Canvas::glyph_quads(const std::string& s, int scale, Put&& put_rect) const {
  std::string text = printable(s);
  // stb_easy_font emits quads of 4 vertices, 16 bytes each (x, y, z, rgba).
  std::vector<char> buffer(text.size() * 1024 + 64);  // 64 bytes a segment, at most ~12 segments a glyph
  const int quads = stb_easy_font_print(0, 0, text.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
  for (int q = 0; q < quads; ++q) {
    const float* v0 = reinterpret_cast<const float*>(buffer.data() + q * 64);
    const float* v2 = reinterpret_cast<const float*>(buffer.data() + q * 64 + 32);
    put_rect(static_cast<int>(std::lround(v0[0] * scale)), static_cast<int>(std::lround(v0[1] * scale)),
             static_cast<int>(std::lround(v2[0] * scale)), static_cast<int>(std::lround(v2[1] * scale)));
  }
}

void Canvas::text(int x, int y, const std::string& s, Color color, int scale) {
  glyph_quads(s, scale, [&](int qx0, int qy0, int qx1, int qy1) { fill_rect(x + qx0, y + qy0, x + qx1, y + qy1, color); });
}

void Canvas::text_vertical(int x, int y, const std::string& s, Color color, int scale) {
  // Glyph point (gx, gy) goes to (x + gy, y + w - gx): a quarter turn counter-clockwise.
  const int w = text_width(s, scale);
  glyph_quads(s, scale, [&](int qx0, int qy0, int qx1, int qy1) {
    fill_rect(x + qy0, y + w - qx1, x + qy1, y + w - qx0, color);
  });
}

int Canvas::text_width(const std::string& s, int scale) {
  std::string text = printable(s);
  return stb_easy_font_width(text.data()) * scale;
}

int Canvas::text_height(int scale) { return 8 * scale; }  // cap height plus descender of one line

void Canvas::save_png(const std::filesystem::path& path) const {
  std::vector<char> png;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<char>*>(context);
    out->insert(out->end(), static_cast<char*>(data), static_cast<char*>(data) + size);
  };
  if (!stbi_write_png_to_func(append, &png, width_, height_, 3, rgb_.data(), width_ * 3))
    throw std::runtime_error("cannot write " + path.string() + ": PNG encoding failed");
  engine::write_file_atomic(path, png);
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

constexpr int kScale = 2;

struct Axes {
  int left, top, right, bottom;  // plot area in pixels
  double x0, x1, y0, y1;         // data range
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
  double py(double y) const { return bottom - (y - y0) / (y1 - y0) * (bottom - top); }
};

void draw_title_and_labels(Canvas& c, const Axes& a, const std::string& title, const std::string& x_label,
                           const std::string& y_label) {
  c.text(std::max(4, (c.width() - Canvas::text_width(title, 3)) / 2), 12, title, kBlack, 3);
  c.text((a.left + a.right - Canvas::text_width(x_label, kScale)) / 2, c.height() - 26, x_label, kBlack, kScale);
  c.text_vertical(10, (a.top + a.bottom - Canvas::text_width(y_label, kScale)) / 2, y_label, kBlack, kScale);
}

void draw_y_ticks(Canvas& c, const Axes& a, const std::vector<double>& ticks) {
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
  for (double t : ticks) {
    if (t < a.y0 - 1e-9 * step || t > a.y1 + 1e-9 * step) continue;  // outside a fixed range
    const int y = static_cast<int>(std::lround(a.py(t)));
    c.fill_rect(a.left, y, a.right, y + 1, kLightGrey);
    c.fill_rect(a.left - 5, y, a.left, y + 1, kBlack);
    const std::string label = tick_label(t, step);
    c.text(a.left - 8 - Canvas::text_width(label, kScale), y - 7, label, kBlack, kScale);
  }
}

void draw_x_tick(Canvas& c, const Axes& a, double px, const std::string& label) {
  const int x = static_cast<int>(std::lround(px));
  c.fill_rect(x, a.bottom, x + 1, a.bottom + 5, kBlack);
  c.text(x - Canvas::text_width(label, kScale) / 2, a.bottom + 9, label, kBlack, kScale);
}

// Legend entries stacked in the right margin; each draws its own swatch.
int legend_width(const std::vector<std::string>& names) {
  int widest = 0;
  for (const std::string& n : names) widest = std::max(widest, Canvas::text_width(n, kScale));
  return widest + 50;
}

void draw_legend_entry(Canvas& c, int x, int y, const std::string& name, Color color, bool as_line) {
  if (as_line)
    c.line(x, y + 7, x + 28, y + 7, color, 3);
  else
    c.fill_rect(x, y, x + 28, y + 14, color);
  c.text(x + 36, y, name, kBlack, kScale);
}

}  // namespace

// ---- line chart ----------------------------------------------------------------------

Canvas draw_line_chart(const LineChart& chart, int width, int height) {
  Canvas c(width, height);
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  std::vector<std::string> names;
  for (const Series& s : chart.series) {
    if (s.x.size() != s.y.size())
      throw std::invalid_argument("plot: series " + s.name + " has " + std::to_string(s.x.size()) + " x and " +
                                  std::to_string(s.y.size()) + " y values");
    for (double v : s.x) x0 = std::min(x0, v), x1 = std::max(x1, v);
    for (double v : s.y)
      if (std::isfinite(v)) y0 = std::min(y0, v), y1 = std::max(y1, v);
    names.push_back(s.name);
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1;
  if (!std::isfinite(y0)) y0 = 0, y1 = 1;
  if (x1 <= x0) x0 -= 0.5, x1 += 0.5;
  std::vector<double> y_ticks = nice_ticks(chart.y_min.value_or(y0), chart.y_max.value_or(y1 > y0 ? y1 : y0 + 1), 6);
  Axes a{104, 60, width - 24 - legend_width(names), height - 60, x0, x1, chart.y_min.value_or(y_ticks.front()),
         chart.y_max.value_or(y_ticks.back())};
  if (a.y1 <= a.y0) a.y1 = a.y0 + 1;
  // Leave a little room so that points on the edges are not cut by the frame.
  const double pad = (x1 - x0) * 0.04;
  a.x0 -= pad, a.x1 += pad;
  draw_y_ticks(c, a, y_ticks);
  const std::vector<double> x_ticks = nice_ticks(x0, x1, 8);
  for (double t : x_ticks)
    if (!chart.integer_x || t == std::round(t))
      draw_x_tick(c, a, a.px(t), tick_label(t, chart.integer_x ? 1 : x_ticks[1] - x_ticks[0]));
  for (const Series& s : chart.series) {
    for (size_t i = 0; i + 1 < s.x.size(); ++i)
      c.line(a.px(s.x[i]), a.py(s.y[i]), a.px(s.x[i + 1]), a.py(s.y[i + 1]), s.color, 3);
    for (size_t i = 0; i < s.x.size(); ++i) {
      const int x = static_cast<int>(std::lround(a.px(s.x[i]))), y = static_cast<int>(std::lround(a.py(s.y[i])));
      c.fill_rect(x - 4, y - 4, x + 5, y + 5, s.color);
    }
  }
  c.rect_outline(a.left, a.top, a.right + 1, a.bottom + 1, kBlack);
  for (size_t i = 0; i < chart.series.size(); ++i)
    draw_legend_entry(c, a.right + 16, a.top + static_cast<int>(i) * 24, chart.series[i].name,
                      chart.series[i].color, true);
  draw_title_and_labels(c, a, chart.title, chart.x_label, chart.y_label);
  return c;
}

// ---- heatmap -------------------------------------------------------------------------------

Canvas draw_heatmap(const Heatmap& map, int width, int height) {
  Canvas c(width, height);
  const size_t rows = map.values.size(), columns = map.column_labels.size();
  if (rows == 0 || columns == 0 || map.row_labels.size() != rows)
    throw std::invalid_argument("plot: heatmap " + map.title + " needs matching rows, row labels and columns");
  Axes a{110, 60, width - 110, height - 70, 0, static_cast<double>(columns), 0, static_cast<double>(rows)};
  const double cell_w = static_cast<double>(a.right - a.left) / columns;
  const double cell_h = static_cast<double>(a.bottom - a.top) / rows;
  for (size_t i = 0; i < rows; ++i) {
    const int y0 = a.top + static_cast<int>(std::lround(i * cell_h)), y1 = a.top + static_cast<int>(std::lround((i + 1) * cell_h));
    for (size_t j = 0; j < columns; ++j) {
      const int x0 = a.left + static_cast<int>(std::lround(j * cell_w)), x1 = a.left + static_cast<int>(std::lround((j + 1) * cell_w));
      if (j >= map.values[i].size()) {
        c.fill_rect(x0, y0, x1, y1, kLightGrey);
        continue;
      }
      const double v = map.values[i][j];
      c.fill_rect(x0, y0, x1, y1, colormap(v));
      char label[16];
      std::snprintf(label, sizeof label, "%.3f", v);
      const Color ink = v > 0.6 ? kBlack : kWhite;  // readable on both ends of the colour map
      c.text((x0 + x1 - Canvas::text_width(label, kScale)) / 2, (y0 + y1) / 2 - 7, label, ink, kScale);
    }
    c.text(a.left - 10 - Canvas::text_width(map.row_labels[i], kScale),
           a.top + static_cast<int>(std::lround((i + 0.5) * cell_h)) - 7, map.row_labels[i], kBlack, kScale);
  }
  for (size_t j = 0; j < columns; ++j) draw_x_tick(c, a, a.left + (j + 0.5) * cell_w, map.column_labels[j]);
  c.rect_outline(a.left, a.top, a.right + 1, a.bottom + 1, kBlack);
  // Colour bar 0..1 on the right.
  const int bar_x = a.right + 30;
  for (int y = a.top; y < a.bottom; ++y)
    c.fill_rect(bar_x, y, bar_x + 20, y + 1, colormap(1.0 - static_cast<double>(y - a.top) / (a.bottom - a.top)));
  c.rect_outline(bar_x, a.top, bar_x + 21, a.bottom + 1, kBlack);
  for (double t : {0.0, 0.5, 1.0})
    c.text(bar_x + 26, static_cast<int>(std::lround(a.bottom - t * (a.bottom - a.top))) - 7, tick_label(t, 0.5),
           kBlack, kScale);
  draw_title_and_labels(c, a, map.title, map.x_label, map.y_label);
  return c;
}

// ---- grouped stacked bars ------------------------------------------------------------------

Canvas draw_stacked_bars(const StackedBars& chart, int width, int height) {
  Canvas c(width, height);
  const size_t groups = chart.group_labels.size(), parts = chart.part_names.size();
  double top_value = 0;
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
      for (double v : stack) total += v;
      top_value = std::max(top_value, total);
    }
    names.push_back(bar.name);
  }
  for (const std::string& p : chart.part_names) names.push_back(p);
  const std::vector<double> ticks = nice_ticks(0, top_value > 0 ? top_value : 1, 6);
  Axes a{104, 60, width - 24 - legend_width(names), height - 60, 0, static_cast<double>(groups), 0, ticks.back()};
  draw_y_ticks(c, a, ticks);
  const double group_w = static_cast<double>(a.right - a.left) / std::max<size_t>(1, groups);
  const double bar_w = group_w * 0.8 / std::max<size_t>(1, chart.bars.size());
  for (size_t g = 0; g < groups; ++g) {
    for (size_t b = 0; b < chart.bars.size(); ++b) {
      const int x0 = static_cast<int>(std::lround(a.left + g * group_w + group_w * 0.1 + b * bar_w));
      const int x1 = static_cast<int>(std::lround(a.left + g * group_w + group_w * 0.1 + (b + 1) * bar_w)) - 1;
      double base = 0;
      for (size_t p = 0; p < parts; ++p) {
        const double value = chart.bars[b].parts[g][p];
        // Later parts are lighter shades of the bar's colour.
        c.fill_rect(x0, static_cast<int>(std::lround(a.py(base + value))), x1,
                    static_cast<int>(std::lround(a.py(base))), lighten(chart.bars[b].color, 0.55 * p));
        base += value;
      }
    }
    draw_x_tick(c, a, a.left + (g + 0.5) * group_w, chart.group_labels[g]);
  }
  c.rect_outline(a.left, a.top, a.right + 1, a.bottom + 1, kBlack);
  int y = a.top;
  for (const StackedBars::Bar& bar : chart.bars) {
    draw_legend_entry(c, a.right + 16, y, bar.name, bar.color, false);
    y += 24;
  }
  y += 12;
  for (size_t p = 0; p < parts; ++p) {
    draw_legend_entry(c, a.right + 16, y, chart.part_names[p], lighten(kGrey, 0.55 * p), false);
    y += 24;
  }
  draw_title_and_labels(c, a, chart.title, chart.x_label, chart.y_label);
  return c;
}

}  // namespace continual::plot
