// Helpers shared by the search tests.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "search/distribution.h"

namespace qsearch::search::testing {

// The pid of a process that has exited and been reaped (so kill(pid, 0) fails with ESRCH).
inline int dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

inline std::string param_name(const char* prefix, int i) {
  std::string name = prefix;
  name += std::to_string(i);
  return name;
}

}  // namespace qsearch::search::testing
