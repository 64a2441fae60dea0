// Invariant checks, cheapest first:
//
//   QSEARCH_DCHECK(cond)  debug builds only; for preconditions that plan()/verify() already
//                         validated (kernels, the executor loop). Free in release.
//   QSEARCH_CHECK(cond)   always on; a broken internal invariant (a bug in qsearch, not bad
//                         input). Prints file, line and expression, then aborts.
//
// Bad *input* is never a CHECK: it is a qsearch::Error (error.h) with a message for the user.
#pragma once

#include <cstdio>
#include <cstdlib>

#define QSEARCH_CHECK(cond)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: internal error: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                  \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

#ifdef NDEBUG
#define QSEARCH_DCHECK(cond) \
  do {                       \
  } while (0)
#else
#define QSEARCH_DCHECK(cond) QSEARCH_CHECK(cond)
#endif
