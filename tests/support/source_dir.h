// The source tree's root, where the test fixtures live. A function rather than a macro holding
// the path, so that no test object's command line names the checkout (ccache then shares test
// objects between checkouts). Part of the tests' precompiled header.
#pragma once

namespace qsearch::test {
const char* source_dir();
}  // namespace qsearch::test

#define QSEARCH_SOURCE_DIR (::qsearch::test::source_dir())
