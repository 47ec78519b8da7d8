#include "engine/backend.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <stdexcept>

#include "backend_plugins.h"  // in the build directory, from ../meson.build

namespace engine {

int64_t Broadcast::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= out_shape[i];
  return n;
}

Broadcast Broadcast::coalesced() const {
  Broadcast c;
  for (int d = 0; d < ndim; ++d) {
    if (out_shape[d] == 1) continue;  // its index is always 0
    const int last = c.ndim - 1;
    if (last >= 0 && c.a_strides[last] == a_strides[d] * out_shape[d] &&
        c.b_strides[last] == b_strides[d] * out_shape[d]) {
      c.out_shape[last] *= out_shape[d];  // d continues the dimension outside it
      c.a_strides[last] = a_strides[d];
      c.b_strides[last] = b_strides[d];
      continue;
    }
    c.out_shape[c.ndim] = out_shape[d];
    c.a_strides[c.ndim] = a_strides[d];
    c.b_strides[c.ndim] = b_strides[d];
    ++c.ndim;
  }
  return c;
}

void Backend::set_tf32(bool on) {
  if (on) throw std::invalid_argument("set_tf32: " + name() + " has no TF32 mode (a GPU tensor-core mode)");
}

Backend& cpu_backend();  // engine/cpu/cpu_backend.cpp

namespace {

// A device: whether its plugin was loaded, its factory once registered, the
// index of the device it runs on, and, from its first use on, the backend or
// the reason there is none. Kept until the process ends (backends free no
// device memory at exit: the runtime may be gone by then).
struct Registration {
  std::once_flag plugin_loaded;
  std::string plugin_error;  // why dlopen failed ("" if it did not)
  BackendFactory factory = nullptr;
  int index = 0;
  std::atomic<bool> started{false};  // the factory has run: `index` is fixed
  std::once_flag created;
  std::unique_ptr<Backend> backend;
  std::string unavailable_reason;
};

// One entry per Device (the CPU's stays empty). Function-local, so that
// registering from another library's static initialiser finds the registry
// constructed whatever the initialisation order.
Registration& registration(Device device) {
  static Registration registrations[2];  // Device::cpu, Device::cuda
  return registrations[static_cast<size_t>(device)];
}

// The file of the device's plugin; "" when the program has none for it.
const char* plugin_path(Device device) { return device == Device::cuda ? ENGINE_CUDA_PLUGIN_PATH : ""; }

// The registration of `device` with its backend created (or its reason
// recorded) on first use; null when no backend was registered.
Registration* created(Device device) {
  load_backend_plugin(device);
  Registration& r = registration(device);
  if (!r.factory) return nullptr;
  std::call_once(r.created, [&r] {
    r.started = true;
    r.backend = r.factory(r.index, &r.unavailable_reason);
    if (!r.backend && r.unavailable_reason.empty()) r.unavailable_reason = "its backend failed to start";
  });
  return &r;
}

// "cuda:1": the kind and index, as --device spells it.
std::string device_name(Device device) {
  if (device == Device::cpu) return to_string(device);
  return to_string(device) + ":" + std::to_string(registration(device).index);
}

std::string not_built_reason(Device device) {
  const Registration& r = registration(device);
  if (!r.plugin_error.empty()) return r.plugin_error;
  return "this program was built without the " + to_string(device) + " backend (see the `" +
         to_string(device) + "` Meson option)";
}

}  // namespace

void register_backend(Device device, BackendFactory factory) {
  if (device == Device::cpu)
    throw std::logic_error("register_backend: the cpu backend is built into the engine");
  if (!factory) throw std::logic_error("register_backend: null factory for " + to_string(device));
  Registration& r = registration(device);
  if (r.factory)
    throw std::logic_error("register_backend: " + to_string(device) + " is already registered");
  r.factory = factory;
}

bool backend_built(Device device) {
  return device == Device::cpu || registration(device).factory != nullptr || plugin_path(device)[0] != '\0';
}

// Loads the device's plugin once; its static initialiser registers the
// backend (cuda/register_backend.cpp). RTLD_NOW: a missing symbol or library
// is an error now, with dlerror's message, not a crash at the first call.
// Never unloaded: the backend lives until the process ends.
void load_backend_plugin(Device device) {
  const char* path = plugin_path(device);
  if (path[0] == '\0') return;
  Registration& r = registration(device);
  std::call_once(r.plugin_loaded, [&r, path] {
    if (r.factory) return;  // registered by hand already
    if (dlopen(path, RTLD_NOW | RTLD_LOCAL) == nullptr) {
      const char* why = dlerror();
      r.plugin_error = std::string("its backend plugin could not be loaded: ") +
                       (why ? why : std::string(path) + ": unknown error");
    } else if (!r.factory) {
      r.plugin_error = std::string("its backend plugin ") + path + " registered no backend";
    }
  });
}

bool backend_registered(Device device) {
  load_backend_plugin(device);
  return device == Device::cpu || registration(device).factory != nullptr;
}

bool backend_available(Device device) {
  if (device == Device::cpu) return true;
  const Registration* r = created(device);
  return r && r->backend;
}

std::string backend_unavailable_reason(Device device) {
  if (device == Device::cpu) return {};
  const Registration* r = created(device);
  if (!r) return not_built_reason(device);
  return r->backend ? std::string() : r->unavailable_reason;
}

Backend& backend(Device device) {
  if (device == Device::cpu) return cpu_backend();
  Registration* r = created(device);
  if (!r || !r->backend)
    throw std::runtime_error("device " + device_name(device) + " requested, but it is not available: " +
                             backend_unavailable_reason(device));
  return *r->backend;
}

void set_device_index(Device device, int index) {
  if (index < 0)
    throw std::invalid_argument("set_device_index: index " + std::to_string(index) + " of " + to_string(device) +
                                " is negative");
  if (device == Device::cpu) {
    if (index != 0) throw std::invalid_argument("set_device_index: the cpu is one device; index " +
                                                std::to_string(index) + " does not exist");
    return;
  }
  Registration& r = registration(device);
  if (index == r.index) return;
  if (r.started)
    throw std::logic_error("set_device_index: " + device_name(device) + " is in use already; choose " +
                           to_string(device) + ":" + std::to_string(index) + " before the device's first use");
  r.index = index;
}

int device_index(Device device) { return device == Device::cpu ? 0 : registration(device).index; }

}  // namespace engine
