// The plugin registry: hooks run in dependency order whatever the PLUGINS
// order; a missing or circular dependency is refused with one line; the
// plugins of this build come out with python before the plugins on it.
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/plugin.hh"

// Project headers come before <cmocka.h>: its fail() macro would rewrite
// any member function named fail.
extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

using spindle::core::Plugin;

class Fake final : public Plugin {
 public:
  Fake(std::string_view name, std::vector<std::string_view> deps) : name_(name), deps_(deps) {}
  std::string_view name() const override { return name_; }
  std::vector<std::string_view> depends_on() const override { return deps_; }

 private:
  std::string_view name_;
  std::vector<std::string_view> deps_;
};

std::string names(const std::vector<Plugin*>& v) {
  std::string out;
  for (Plugin* p : v) {
    if (!out.empty()) out += ' ';
    out += p->name();
  }
  return out;
}

std::size_t position(const std::vector<Plugin*>& v, std::string_view name) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i]->name() == name) return i;
  return v.size();
}

// PLUGINS="tornado python ev greenlet" used to start --tornado apps with no
// event loop: tornado's worker start ran before python's.
void test_dependencies_go_first_whatever_the_order(void**) {
  Fake tornado("tornado", {"python", "ev"}), python("python", {}), ev("ev", {}),
      greenlet("greenlet", {"python"});
  std::vector<Plugin*> out;
  std::string err = spindle::core::order_plugins({&tornado, &python, &ev, &greenlet}, &out);
  assert_string_equal(err.c_str(), "");
  assert_string_equal(names(out).c_str(), "python ev tornado greenlet");
}

void test_order_is_kept_where_nothing_depends(void**) {
  Fake a("a", {}), b("b", {}), c("c", {});
  std::vector<Plugin*> out;
  assert_string_equal(spindle::core::order_plugins({&c, &a, &b}, &out).c_str(), "");
  assert_string_equal(names(out).c_str(), "c a b");
}

void test_missing_dependency_names_both(void**) {
  Fake tornado("tornado", {"python", "ev"}), ev("ev", {});
  std::vector<Plugin*> out;
  std::string err = spindle::core::order_plugins({&tornado, &ev}, &out);
  assert_non_null(strstr(err.c_str(), "'tornado'"));
  assert_non_null(strstr(err.c_str(), "'python'"));
  assert_null(strchr(err.c_str(), '\n'));
}

void test_circle_is_refused(void**) {
  Fake a("a", {"b"}), b("b", {"a"});
  std::vector<Plugin*> out;
  std::string err = spindle::core::order_plugins({&a, &b}, &out);
  assert_non_null(strstr(err.c_str(), "circle"));
}

void test_this_build_is_ordered(void**) {
  assert_string_equal(spindle::core::plugins_error().c_str(), "");
  const auto& all = spindle::core::plugins();
  assert_int_equal(all.size(), spindle::core::built_plugins().size() + 1);  // + fibers
  assert_true(position(all, "fibers") < all.size());
  std::size_t py = position(all, "python");
  for (Plugin* p : all)
    for (std::string_view dep : p->depends_on())
      assert_true(position(all, dep) < position(all, p->name()));
  if (position(all, "tornado") < all.size()) assert_true(py < position(all, "tornado"));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dependencies_go_first_whatever_the_order),
      cmocka_unit_test(test_order_is_kept_where_nothing_depends),
      cmocka_unit_test(test_missing_dependency_names_both),
      cmocka_unit_test(test_circle_is_refused),
      cmocka_unit_test(test_this_build_is_ordered),
  };
  return cmocka_run_group_tests_name("plugins", tests, nullptr, nullptr);
}
