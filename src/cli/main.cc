#include "cli/app.h"

int main(int argc, char** argv) { return qsearch::cli::main(argc, argv); }
