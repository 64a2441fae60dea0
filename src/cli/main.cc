#include <cstdio>

int main() {
  std::puts("qsearch (under construction)");
  return 0;
}
