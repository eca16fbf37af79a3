#pragma once
// Clang thread-safety analysis (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html).
//
// Every member guarded by a mutex says so with FERRY_GUARDED_BY(mu); every function that must
// be called with a lock held says FERRY_REQUIRES(mu). A clang build with -Wthread-safety
// -Werror (the fuzz preset, run by CI) then rejects an access without the lock. Under GCC the
// macros expand to nothing.
//
// std::mutex carries no capability attributes in libstdc++, so guarded state uses
// ferry::Mutex and ferry::MutexLock (same cost: a std::mutex and a scoped lock). Code that
// needs a std::condition_variable waits on ferry::CondVar, which takes a MutexLock.

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define FERRY_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FERRY_THREAD_ANNOTATION(x)
#endif

#define FERRY_CAPABILITY(x) FERRY_THREAD_ANNOTATION(capability(x))
#define FERRY_SCOPED_CAPABILITY FERRY_THREAD_ANNOTATION(scoped_lockable)
#define FERRY_GUARDED_BY(x) FERRY_THREAD_ANNOTATION(guarded_by(x))
#define FERRY_PT_GUARDED_BY(x) FERRY_THREAD_ANNOTATION(pt_guarded_by(x))
#define FERRY_REQUIRES(...) FERRY_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define FERRY_EXCLUDES(...) FERRY_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define FERRY_ACQUIRE(...) FERRY_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define FERRY_RELEASE(...) FERRY_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define FERRY_TRY_ACQUIRE(...) FERRY_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define FERRY_RETURN_CAPABILITY(x) FERRY_THREAD_ANNOTATION(lock_returned(x))
#define FERRY_NO_THREAD_SAFETY_ANALYSIS FERRY_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace ferry {

// A std::mutex the analysis knows about. Any thread may call any member.
class FERRY_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() FERRY_ACQUIRE() { mu_.lock(); }
  void unlock() FERRY_RELEASE() { mu_.unlock(); }
  bool try_lock() FERRY_TRY_ACQUIRE(true) { return mu_.try_lock(); }

  // For std::condition_variable only (see CondVar).
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// Holds `mu` for its scope. Unlock()/Lock() let a holder drop the lock around slow work
// (the analysis tracks both).
class FERRY_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) FERRY_ACQUIRE(mu) : lock_(mu.native()) {}
  ~MutexLock() FERRY_RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() FERRY_RELEASE() { lock_.unlock(); }
  void Lock() FERRY_ACQUIRE() { lock_.lock(); }

  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

// A condition variable waited on with a MutexLock. The caller holds the lock, as the
// analysis requires for reading the guarded state in the predicate.
class CondVar {
 public:
  void Wait(MutexLock& lock) { cv_.wait(lock.native()); }
  template <typename Pred>
  void Wait(MutexLock& lock, Pred pred) {
    cv_.wait(lock.native(), pred);
  }
  template <typename Clock, typename Duration>
  std::cv_status WaitUntil(MutexLock& lock, const std::chrono::time_point<Clock, Duration>& t) {
    return cv_.wait_until(lock.native(), t);
  }
  template <typename Rep, typename Period>
  std::cv_status WaitFor(MutexLock& lock, const std::chrono::duration<Rep, Period>& d) {
    return cv_.wait_for(lock.native(), d);
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace ferry
