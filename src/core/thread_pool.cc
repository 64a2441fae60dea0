#include "core/thread_pool.h"

#include "core/check.h"
#include "core/error.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace qsearch {

namespace {

thread_local bool t_in_region = false;

struct Job {
  const ChunkFn* fn;
  int64_t begin, end, chunk;
  int64_t n_chunks;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  int active_workers = 0;  // workers holding a pointer to this job; guarded by m
  std::mutex m;
  std::condition_variable cv;

  // Runs one chunk if any is left; returns false when none was.
  bool run_one() {
    int64_t c = next.fetch_add(1);
    if (c >= n_chunks) return false;
    int64_t b = begin + c * chunk;
    int64_t e = std::min(end, b + chunk);
    bool was = t_in_region;
    t_in_region = true;
    (*fn)(b, e);
    t_in_region = was;
    done.fetch_add(1);
    return true;
  }
};

class Pool {
 public:
  static Pool& get() {
    static Pool pool;
    return pool;
  }

  int size() {
    std::lock_guard<std::mutex> lock(m_);
    return threads_wanted_;
  }

  void resize(int n) {
    std::lock_guard<std::mutex> lock(m_);
    const int wanted = std::max(1, n);
    // Workers are only ever added; extra ones simply find fewer chunks (chunking uses the
    // wanted count).
    while (static_cast<int>(workers_.size()) < wanted - 1) {
      try {
        workers_.emplace_back([this] { worker(); });
      } catch (const std::system_error& e) {
        // Keep the workers that started (they serve any count); refuse the request.
        const int started = static_cast<int>(workers_.size()) + 1;
        throw Error(fmt::format(
            "--threads {}: the system could start only {} threads ({}); use --threads {} or "
            "fewer",
            wanted, started, e.what(), started));
      }
    }
    threads_wanted_ = wanted;
  }

  void run(Job& job) {
    {
      std::lock_guard<std::mutex> lock(m_);
      queue_.push_back(&job);
    }
    cv_.notify_all();
    while (job.run_one()) {
    }
    {
      std::lock_guard<std::mutex> lock(m_);
      auto it = std::find(queue_.begin(), queue_.end(), &job);
      if (it != queue_.end()) queue_.erase(it);
    }
    // No worker can pick the job up any more; wait for those that did.
    std::unique_lock<std::mutex> lock(job.m);
    job.cv.wait(lock, [&] { return job.active_workers == 0; });
    QSEARCH_CHECK(job.done.load() == job.n_chunks);
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  Pool() {
    queue_.reserve(64);
    int n = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("QSEARCH_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) n = v;
    }
    try {
      resize(n <= 0 ? 1 : n);
    } catch (const Error& e) {
      // $QSEARCH_THREADS asked for more than the system starts: use the workers that started
      // (throwing from here would destroy joinable threads).
      std::fprintf(stderr, "qsearch: warning: QSEARCH_THREADS=%d: %s\n", n, e.what());
      threads_wanted_ = static_cast<int>(workers_.size()) + 1;
    }
  }

  void worker() {
    for (;;) {
      Job* job = nullptr;
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        job = queue_.front();
        // Drop exhausted jobs from the queue so other jobs get served.
        if (job->next.load() >= job->n_chunks) {
          queue_.erase(queue_.begin());
          continue;
        }
        std::lock_guard<std::mutex> job_lock(job->m);
        ++job->active_workers;
      }
      while (job->run_one()) {
      }
      std::lock_guard<std::mutex> job_lock(job->m);
      --job->active_workers;
      job->cv.notify_all();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  // A vector, not a deque: a deque allocates a new block every few dozen push/pop cycles, and
  // Executor::run must not allocate. Erasing keeps the capacity; it holds the concurrent jobs.
  std::vector<Job*> queue_;
  std::vector<std::thread> workers_;
  int threads_wanted_ = 1;
  bool stop_ = false;
};

}  // namespace

int num_threads() { return Pool::get().size(); }
void set_num_threads(int n) { Pool::get().resize(n); }
bool in_parallel_region() { return t_in_region; }

void parallel_for(int64_t begin, int64_t end, int64_t grain, ChunkFn fn) {
  if (end <= begin) return;
  int64_t n = end - begin;
  grain = std::max<int64_t>(1, grain);
  int threads = num_threads();
  if (t_in_region || threads == 1 || n <= grain) {
    fn(begin, end);
    return;
  }
  // About 4 chunks per thread balances uneven chunks without much scheduling cost.
  int64_t chunk = std::max(grain, (n + 4 * threads - 1) / (4 * threads));
  Job job;
  job.fn = &fn;
  job.begin = begin;
  job.end = end;
  job.chunk = chunk;
  job.n_chunks = (n + chunk - 1) / chunk;
  Pool::get().run(job);
}

}  // namespace qsearch
