#include "support/source_dir.h"

namespace qsearch::test {
const char* source_dir() { return QSEARCH_SOURCE_DIR_PATH; }
}  // namespace qsearch::test
