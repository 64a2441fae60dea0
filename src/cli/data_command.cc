// qsearch data list | qsearch data download NAME
#include <iostream>

#include "cli/commands.h"
#include "data/dataset.h"

namespace qsearch::cli {

void add_data_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
  CLI::App* cmd = app.add_subcommand("data", "Data sets: where they are, how to get them");
  cmd->require_subcommand(1);
  CLI::App* list =
      cmd->add_subcommand("list", "Show each data set, where it was found, its splits");
  list->callback([&global, &run] {
    run = [&global] {
      data::DataOptions opts{.data_dir = global.data_dir};
      std::cout << data::format_dataset_list(data::list_datasets(opts));
      return 0;
    };
  });
  auto name = std::make_shared<std::string>();
  CLI::App* download = cmd->add_subcommand(
      "download", "Download a data set into the data directory (needs internet)");
  download->add_option("name", *name, "Data set name (jsc)")->required();
  download->callback([&global, &run, name] {
    run = [&global, name] {
      data::DataOptions opts{.data_dir = global.data_dir};
      data::download_dataset(*name, opts, std::cerr);
      return 0;
    };
  });
}

}  // namespace qsearch::cli
