// The worked example of docs/lora-internals.md §9: every tensor of one LoRA
// step and one ConvLoRA reshape, printed (run with --log_level=message) and
// checked against the numbers computed by hand in the text. If a number here
// changes, the text is wrong too.
#define BOOST_TEST_MODULE lora_worked_example
#include <boost/test/unit_test.hpp>

#include <sstream>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "layers/adapters.h"
#include "layers/conv2d.h"
#include "layers/linear.h"

using engine::DType;
using engine::Shape;
using engine::Tensor;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_double_vector(); }

// Writes `values` (float64) into a parameter in place, outside the graph.
void set(const Tensor& t, const std::vector<double>& v) {
  Tensor target = t;
  engine::NoGradGuard no_grad;
  target.copy_(Tensor::from_vector(t.shape(), std::span<const double>(v)));
}

void print(const std::string& name, const Tensor& t) {
  std::ostringstream line;
  line << name << " " << engine::to_string(t.shape()) << " =";
  for (double v : values(t)) line << " " << v;
  BOOST_TEST_MESSAGE(line.str());
}

}  // namespace

// W (2,2), A (1,2), B (2,1), s = 2, x (1,2); loss L = sum(y * g) with g = (1, -1),
// so G = dL/dy = g. All values are small integers or halves: float64 is exact.
BOOST_AUTO_TEST_CASE(dense_lora_step_by_hand) {
  layers::Linear linear(2, 2, /*bias=*/false, nullptr);
  linear.to(DType::f64);
  set(linear.weight(), {1, 2, 3, 4});
  linear.freeze();
  auto lora = std::make_shared<layers::LoRA>(2, 2, /*rank=*/1, /*scaling=*/2.0, 0.0, 0, nullptr);
  lora->to(DType::f64);
  set(lora->A(), {1, -1});
  set(lora->B(), {0.5, -1});
  linear.add_adapter(0, lora);
  linear.set_task(0);

  Tensor x = Tensor::from_vector({1, 2}, std::span<const double>(std::vector<double>{1, 2}));
  x.set_requires_grad();
  const Tensor g = Tensor::from_vector({1, 2}, std::span<const double>(std::vector<double>{1, -1}));

  // dW = s B A = 2 [[0.5, -0.5], [-1, 1]]
  BOOST_TEST(values(lora->delta()) == (std::vector<double>{1, -1, -2, 2}));
  // y = x (W + dW)^T = (1, 2) [[2, 1], [1, 6]]^T = (4, 13)
  const Tensor y = linear.forward(x);
  BOOST_TEST(values(y) == (std::vector<double>{4, 13}));
  engine::sum(engine::mul(y, g)).backward();

  print("W", linear.weight());
  print("A", lora->A());
  print("B", lora->B());
  print("x", x);
  print("y", y);
  print("dL/dA", lora->A().grad());
  print("dL/dB", lora->B().grad());
  print("dL/dx", x.grad());
  // H = x A^T = -1; dL/dB = s G^T H = 2 (1, -1)^T (-1)
  BOOST_TEST(values(lora->B().grad()) == (std::vector<double>{-2, 2}));
  // G B = 1.5; dL/dA = s (G B)^T x = 3 (1, 2)
  BOOST_TEST(values(lora->A().grad()) == (std::vector<double>{3, 6}));
  // dL/dx = G W + s (G B) A = (-2, -2) + (3, -3)
  BOOST_TEST(values(x.grad()) == (std::vector<double>{1, -5}));
  BOOST_TEST(!linear.weight().grad().defined());

  // Merge writes W + dW; unmerge restores W exactly.
  linear.merge();
  print("W merged", linear.weight());
  BOOST_TEST(values(linear.weight()) == (std::vector<double>{2, 1, 1, 6}));
  BOOST_TEST(values(linear.forward(x)) == (std::vector<double>{4, 13}));
  linear.unmerge();
  BOOST_TEST(values(linear.weight()) == (std::vector<double>{1, 2, 3, 4}));
}

// ConvLoRA with C = 6 input channels, K = 3, OC = 1, R = 1: B A is (OC*K, C*K) =
// (3, 18), and row j of it fills input channels 2j and 2j+1 (the block
// [j*C/K, (j+1)*C/K)) over all three kernel rows: the table in §3.
BOOST_AUTO_TEST_CASE(convlora_rows_cover_blocks_of_input_channels) {
  const int64_t c = 6, k = 3, oc = 1;
  auto adapter = std::make_shared<layers::ConvLoRA>(c, oc, k, /*rank=*/1, /*scaling=*/1.0, nullptr);
  adapter->to(DType::f64);
  // B = I (3,3) and A (3,18) with entry (row, col) = 100 * row + col, so that
  // B A holds its own row and column in every entry.
  std::vector<double> a(3 * c * k), b(3 * 3, 0.0);
  for (int64_t row = 0; row < 3; ++row)
    for (int64_t col = 0; col < c * k; ++col) a[row * c * k + col] = 100.0 * row + col;
  for (int64_t i = 0; i < 3; ++i) b[i * 3 + i] = 1;
  set(adapter->A(), a);
  set(adapter->B(), b);
  const std::vector<double> dw = values(adapter->delta());  // (1, 6, 3, 3)
  print("dW (BA entry 100*row+col)", adapter->delta());
  for (int64_t i = 0; i < c; ++i)
    for (int64_t h = 0; h < k; ++h)
      for (int64_t w = 0; w < k; ++w) {
        // row = o*K + floor((i*K + h) / C), col = ((i*K + h) mod C) * K + w
        const int64_t row = (i * k + h) / c, col = ((i * k + h) % c) * k + w;
        BOOST_TEST(dw[(i * k + h) * k + w] == 100.0 * row + col);
      }
  // Input channels 0 and 1 come from row 0, 2 and 3 from row 1, 4 and 5 from row 2.
  BOOST_TEST(dw[(1 * k + 2) * k + 0] == 100.0 * 0 + 15);
  BOOST_TEST(dw[(2 * k + 0) * k + 0] == 100.0 * 1 + 0);
  BOOST_TEST(dw[(5 * k + 2) * k + 2] == 100.0 * 2 + 17);
}
