// Autograd semantics: a second backward through a released graph is refused,
// a leaf's gradient accumulates, nodes (and the activations only they hold)
// are freed as backward walks the graph, dropping a long graph takes constant
// stack, an in-place write to a tensor saved for backward is refused, and
// backward(gradient) from a non-scalar is the vector-Jacobian product.
#define BOOST_TEST_MODULE autograd
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/tensor.h"

using namespace engine;

namespace {

Tensor leaf(const Shape& shape, std::vector<double> values) {
  Tensor t = Tensor::from_vector(shape, std::span<const double>(values));
  t.set_requires_grad();
  return t;
}

// Checks that `f` throws Error whose message holds every part.
template <class Error = std::runtime_error, class F>
void check_refused(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const char* part : parts) BOOST_TEST(what.find(part) != std::string::npos, what);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(second_backward_through_a_shared_subgraph_is_refused) {
  Tensor x = leaf({3}, {1, 2, 3});
  Tensor h = mul(x, x);  // shared by both losses
  Tensor first = sum(h), second = sum(mul_scalar(h, 3.0));
  first.backward();
  BOOST_TEST(x.grad().to_double_vector() == std::vector<double>({2, 4, 6}),
             boost::test_tools::per_element());
  // h's node was released by the first backward: going through it again would
  // silently stop at h (x would get nothing from `second`).
  check_refused([&] { second.backward(); }, {"second time", "mul", "(3)"});
  BOOST_TEST(x.grad().to_double_vector() == std::vector<double>({2, 4, 6}),
             boost::test_tools::per_element());
  check_refused([&] { first.backward(); }, {"second time", "sum"});
  // A fresh forward is fine.
  sum(mul(x, x)).backward();
  BOOST_TEST(x.grad().to_double_vector() == std::vector<double>({4, 8, 12}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(backward_on_a_leaf_scalar_accumulates) {
  Tensor x = leaf({}, {5});
  x.backward();
  x.backward();
  BOOST_TEST(x.grad().item() == 2.0);
  sum(mul_scalar(x, 3.0)).backward();
  BOOST_TEST(x.grad().item() == 5.0);
}

// backward(gradient) from a non-scalar is the vector-Jacobian product: the
// same gradients, bit for bit, as backward() of sum(y * gradient).
BOOST_AUTO_TEST_CASE(backward_with_a_gradient_is_the_vector_jacobian_product) {
  const std::vector<double> values = {0.5, -1.25, 2.0, 3.5, -0.75, 1.5}, v_values = {0.25, -2.0, 1.0};
  const std::vector<double> g = {1, -3, 0.5, 2, 7, -1};
  const Tensor w = leaf({2, 3}, values), v = leaf({3}, v_values);
  const Tensor gradient = Tensor::from_vector({2, 3}, std::span<const double>(g));
  mul(mul(w, w), v).backward(gradient);
  const std::vector<double> w_grad = w.grad().to_double_vector(), v_grad = v.grad().to_double_vector();
  for (size_t i = 0; i < values.size(); ++i)  // d/dw of sum(g * w^2 * v) = 2 g w v
    BOOST_TEST(w_grad[i] == 2 * g[i] * values[i] * v_values[i % 3]);
  const Tensor w2 = leaf({2, 3}, values), v2 = leaf({3}, {0.25, -2.0, 1.0});
  sum(mul(mul(mul(w2, w2), v2), gradient)).backward();
  BOOST_TEST(w2.grad().to_double_vector() == w_grad, boost::test_tools::per_element());
  BOOST_TEST(v2.grad().to_double_vector() == v_grad, boost::test_tools::per_element());
  // Accumulates like backward(): a second graph adds its gradient.
  mul(w, w).backward(gradient);
  for (size_t i = 0; i < values.size(); ++i)
    BOOST_TEST(w.grad().to_double_vector()[i] == w_grad[i] + 2 * g[i] * values[i]);
}

// An identity op whose backward notes where its dy lies, may keep a handle on
// dy, and passes dy on to x.
Tensor pass_probe(const Tensor& x, const double*& seen, Tensor* keep = nullptr) {
  Tensor y = x.clone();
  record(y, "pass_probe", {x}, {}, [x, &seen, keep](const Tensor& dy) {
    seen = dy.data<double>();
    if (keep) *keep = dy;
    pass_gradient(x, dy);
  });
  return y;
}

// add, reshape and mul_scalar pass their dy's bytes on to their input
// instead of copying them into a zeroed buffer; the values are the copy's.
BOOST_AUTO_TEST_CASE(pass_through_backwards_hand_on_the_gradient_bytes) {
  const Tensor c = Tensor::from_vector({2, 2}, std::span<const double>(std::vector<double>{1, 2, 3, 4}));
  const double *bottom = nullptr, *top = nullptr;
  // loss = sum(y * y), y = 3 * reshape(x) + c: dloss/dy = 2 y, dloss/dx = 6 y.
  auto backward_through = [&](const Tensor& x, Tensor* keep) {
    const Tensor y = pass_probe(add(mul_scalar(reshape(pass_probe(x, bottom), {2, 2}), 3.0), c), top, keep);
    sum(mul(y, y)).backward();
    return y.to_double_vector();
  };
  auto check_gradient = [](const Tensor& x, const std::vector<double>& y) {
    for (size_t i = 0; i < y.size(); ++i) BOOST_TEST(x.grad().to_double_vector()[i] == 6 * y[i]);
  };
  Tensor x = leaf({4}, {0.5, -1, 2, 3});
  const std::vector<double> y = backward_through(x, nullptr);
  BOOST_TEST(bottom == top);  // one buffer all the way down, scaled by 3 in place
  BOOST_TEST(x.grad().data<double>() == top);
  check_gradient(x, y);

  // A parameter that keeps a spare buffer gets its gradient copied into it.
  const double* spare = x.grad().data<double>();
  x.zero_grad();
  backward_through(x, nullptr);
  BOOST_TEST(bottom == top);
  BOOST_TEST(x.grad().data<double>() == spare);
  check_gradient(x, y);

  // A dy someone else holds is copied, and keeps its values.
  Tensor kept;
  const Tensor fresh = leaf({4}, {0.5, -1, 2, 3});
  backward_through(fresh, &kept);
  BOOST_TEST(kept.data<double>() == top);
  BOOST_TEST(bottom != top);
  BOOST_TEST(kept.to_double_vector() == std::vector<double>({2 * y[0], 2 * y[1], 2 * y[2], 2 * y[3]}),
             boost::test_tools::per_element());
  check_gradient(fresh, y);
}

BOOST_AUTO_TEST_CASE(backward_with_a_wrong_gradient_is_refused) {
  const Tensor w = leaf({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor y = mul(w, w);
  BOOST_CHECK_THROW(y.backward(), std::invalid_argument);  // not one element
  check_refused<std::invalid_argument>([&] { y.backward(Tensor::zeros({3, 2}, DType::f64)); },
                                       {"backward(gradient)", "(2, 3)", "(3, 2)"});
  check_refused<std::invalid_argument>([&] { y.backward(Tensor::zeros({2, 3}, DType::f32)); },
                                       {"backward(gradient)", "dtypes differ"});
  BOOST_CHECK_THROW(y.backward(Tensor()), std::invalid_argument);
  BOOST_CHECK_THROW(Tensor::zeros({2}).backward(Tensor::zeros({2})), std::invalid_argument);  // no grad
  // Nothing was written by the refusals: the graph is still whole.
  BOOST_TEST(!w.grad().defined());
  y.backward(Tensor::full({2, 3}, 1.0, DType::f64));
  BOOST_TEST(w.grad().to_double_vector() == std::vector<double>({2, 4, 6, 8, 10, 12}),
             boost::test_tools::per_element());
}

// A probe op: identity forward; its backward reports whether `watched` (an
// activation downstream of it) has been freed by the time it runs.
Tensor probe(const Tensor& x, std::weak_ptr<TensorImpl>& watched, bool& freed_when_reached) {
  Tensor y = x.clone();
  record(y, "probe", {x}, {}, [x, &watched, &freed_when_reached](const Tensor& dy) {
    freed_when_reached = watched.expired();
    Tensor g = grad_buffer(x);
    backend(g.device()).kernels<double>().axpy(g.numel(), 1.0, dy.data<double>(), g.data<double>());
  });
  return y;
}

BOOST_AUTO_TEST_CASE(nodes_and_their_activations_are_freed_as_backward_walks) {
  Tensor x = leaf({4}, {1, -2, 3, -4});
  std::weak_ptr<TensorImpl> watched;
  bool freed_when_reached = false;
  Tensor loss;
  {
    Tensor a = probe(x, watched, freed_when_reached);
    Tensor b = relu(mul_scalar(a, 2.0));  // relu keeps its input alive until its backward
    watched = b.impl_ptr();
    loss = sum(mul_scalar(b, 3.0));
  }
  BOOST_TEST(!watched.expired());  // the graph holds b until backward reaches it
  loss.backward();
  BOOST_TEST(freed_when_reached);  // freed before backward reached the ops below it
  BOOST_TEST(x.grad().to_double_vector() == std::vector<double>({6, 0, 6, 0}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(operands_that_get_no_gradient_are_not_kept) {
  Tensor x = leaf({2}, {1, 2});
  std::weak_ptr<TensorImpl> constant_impl, matrix_impl;
  Tensor loss;
  {
    Tensor constant = Tensor::full({2}, 10.0, DType::f64);  // add reads no operand values
    Tensor matrix = Tensor::full({2, 2}, 1.0, DType::f64);  // dW of a frozen W is never computed
    constant_impl = constant.impl_ptr();
    matrix_impl = matrix.impl_ptr();
    Tensor row = reshape(add(x, constant), {1, 2});
    loss = sum(matmul(matrix, transpose(row)));
  }
  BOOST_TEST(constant_impl.expired());
  BOOST_TEST(!matrix_impl.expired());  // the gradient of the other operand reads it
  loss.backward();
  BOOST_TEST(matrix_impl.expired());
  BOOST_TEST(x.grad().to_double_vector() == std::vector<double>({2, 2}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(dropping_a_long_graph_takes_constant_stack) {
  // A million chained ops never backpropagated: freeing them recursively
  // overflowed the stack at about 200k.
  Tensor x = leaf({1}, {1});
  Tensor y = x;
  for (int i = 0; i < 1000000; ++i) y = mul_scalar(y, 1.0);
  BOOST_TEST(y.requires_grad());
  y = Tensor();
  BOOST_TEST(!x.grad().defined());
}

// relu_ writes its input's bytes: the result and the input share them, values
// and gradients are relu's bit for bit, and writing a tensor that a backward
// still reads is refused at that backward, as any in-place write.
BOOST_AUTO_TEST_CASE(relu_in_place_shares_bytes_and_matches_relu) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> values{1, -2, 0, -0.0, 3, nan, -1e-30, 2e-30};
  Tensor a = leaf({8}, values), b = leaf({8}, values);
  const Tensor weights = Tensor::from_vector({8}, std::span<const double>(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}));
  Tensor ha = mul_scalar(a, 1.0), hb = mul_scalar(b, 1.0);  // fresh: mul_scalar saves nothing
  const Tensor ya = relu(ha), yb = relu_(hb);
  BOOST_TEST(yb.data<double>() == hb.data<double>());  // one buffer
  const std::vector<double> want = ya.to_double_vector(), got = yb.to_double_vector();
  for (size_t i = 0; i < values.size(); ++i) {
    BOOST_TEST(std::isnan(got[i]) == std::isnan(want[i]));
    if (!std::isnan(want[i])) BOOST_TEST(std::memcmp(&got[i], &want[i], sizeof(double)) == 0, i);
  }
  sum(mul(ya, weights)).backward();
  sum(mul(yb, weights)).backward();
  BOOST_TEST(a.grad().to_double_vector() == std::vector<double>({1, 0, 0, 0, 5, 0, 0, 8}),
             boost::test_tools::per_element());
  BOOST_TEST(b.grad().to_double_vector() == a.grad().to_double_vector(), boost::test_tools::per_element());

  // A leaf's values are the user's: refused.
  BOOST_CHECK_THROW(relu_(leaf({2}, {1, -1})), std::invalid_argument);
  // A tensor that mul saved for its backward: the write is found there.
  Tensor c = leaf({3}, {1, -2, 3});
  Tensor h = mul_scalar(c, 1.0);
  Tensor loss = sum(mul(h, h));  // mul reads h in its backward
  relu_(h);
  check_refused([&] { loss.backward(); }, {"mul", "relu_", "modified in place"});
}

// zero_grad drops the gradient (grad() undefined) but keeps its buffer for
// the next backward, zeroed, unless someone still holds the old gradient.
BOOST_AUTO_TEST_CASE(zero_grad_reuses_the_buffer_nobody_holds) {
  Tensor w = leaf({3}, {1, 2, 3});
  sum(mul(w, w)).backward();
  const double* first = w.grad().data<double>();
  w.zero_grad();
  BOOST_TEST(!w.grad().defined());
  sum(mul_scalar(w, 5.0)).backward();
  BOOST_TEST(w.grad().data<double>() == first);  // the same buffer, zeroed before accumulating
  BOOST_TEST(w.grad().to_double_vector() == std::vector<double>({5, 5, 5}), boost::test_tools::per_element());

  const Tensor kept = w.grad();  // a handle from before zero_grad keeps its values
  w.zero_grad();
  sum(mul_scalar(w, 7.0)).backward();
  BOOST_TEST(w.grad().data<double>() != kept.data<double>());
  BOOST_TEST(kept.to_double_vector() == std::vector<double>({5, 5, 5}), boost::test_tools::per_element());
  BOOST_TEST(w.grad().to_double_vector() == std::vector<double>({7, 7, 7}), boost::test_tools::per_element());

  // Frozen, in either order (layers::Module freezes, then zero_grads): no buffer is kept.
  w.zero_grad();
  w.set_requires_grad(false);
  BOOST_TEST(!w.impl()->spare_grad);
  Tensor v = leaf({2}, {1, 2});
  sum(mul(v, v)).backward();
  v.set_requires_grad(false);
  v.zero_grad();
  BOOST_TEST(!v.grad().defined());
  BOOST_TEST(!v.impl()->spare_grad);
}

BOOST_AUTO_TEST_CASE(in_place_write_to_a_saved_tensor_is_refused) {
  Tensor x = leaf({3}, {1, -2, 3});
  Tensor loss = sum(relu(x));  // relu saves x
  {
    NoGradGuard no_grad;
    x.copy_(Tensor::full({3}, 7.0, DType::f64));
  }
  check_refused([&] { loss.backward(); }, {"relu", "copy_", "(3)", "modified in place"});
  BOOST_TEST(!x.grad().defined());  // refused before any gradient was written

  // Through an alias: reshape shares the storage, and so its version.
  Tensor w = leaf({2, 2}, {1, 2, 3, 4});
  Tensor v = leaf({1, 2}, {1, 1});
  Tensor out = sum(linear(v, w, Tensor()));  // dv reads w
  reshape(w.detach(), {4}).copy_(Tensor::full({4}, 0.0, DType::f64));
  check_refused([&] { out.backward(); }, {"linear", "copy_"});
}

BOOST_AUTO_TEST_CASE(optimiser_step_between_forward_and_backward_is_refused) {
  Tensor w = leaf({2, 2}, {1, 2, 3, 4});
  Tensor x = leaf({1, 2}, {1, 1});
  SGD sgd({w}, 0.1);
  sum(linear(x, w, Tensor())).backward();
  Tensor stale = sum(linear(x, w, Tensor()));
  sgd.step();  // after the first backward (normal), before stale's backward (not)
  check_refused([&] { stale.backward(); }, {"linear", "optimiser step"});

  // The normal flow: forward, backward, step, again.
  for (int i = 0; i < 3; ++i) {
    sgd.zero_grad();
    sum(linear(x, w, Tensor())).backward();
    sgd.step();
  }
  BOOST_TEST(w.grad().to_double_vector() == std::vector<double>({1, 1, 1, 1}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(in_place_write_to_an_operand_nobody_saved_is_fine) {
  // add saves no values, so writing its operand before backward changes nothing.
  Tensor x = leaf({2}, {1, 2});
  Tensor a = mul_scalar(x, 1.0);
  Tensor loss = sum(add(a, Tensor::full({2}, 1.0, DType::f64)));
  a.detach().copy_(Tensor::full({2}, 9.0, DType::f64));
  loss.backward();
  BOOST_TEST(x.grad().to_double_vector() == std::vector<double>({1, 1}),
             boost::test_tools::per_element());
}
