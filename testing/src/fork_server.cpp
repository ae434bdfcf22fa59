#include "fork_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <set>

namespace stagekit::testing::detail {
namespace {

enum class Kind : int { start = 1, started = 2, exited = 3 };

struct Message {
  Kind kind = Kind::start;
  int error = 0;  // errno of a failed fork
  std::uint64_t task = 0;
  pid_t pid = -1;
  int status = 0;
};

bool send_message(int socket, const Message& m, const int* fds = nullptr, int nfds = 0) {
  iovec iov{const_cast<Message*>(&m), sizeof m};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(static_cast<std::size_t>(nfds) * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(static_cast<std::size_t>(nfds) * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds, static_cast<std::size_t>(nfds) * sizeof(int));
  }
  for (;;) {
    const ssize_t n = sendmsg(socket, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof m);
  }
}

// One message; 0 at end of file, -1 on error. Received descriptors go to `fds` (-1 when absent).
int receive_message(int socket, Message& m, int (&fds)[2]) {
  fds[0] = fds[1] = -1;
  iovec iov{&m, sizeof m};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = 0;
  do {
    n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return static_cast<int>(n);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    std::memcpy(fds, CMSG_DATA(c), std::min<std::size_t>(count, 2) * sizeof(int));
  }
  return n == static_cast<ssize_t>(sizeof m) ? 1 : -1;
}

void call_hook(const std::function<void()>& hook, const char* what) {
  if (!hook) return;
  try {
    hook();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fork server: %s failed: %s\n", what, e.what());
  }
}

// The server's whole life: prepare, then fork on request and report exits, until the caller closes
// the socket.
[[noreturn]] void serve(int socket, const ForkServer& hooks, const std::function<ChildBody(std::size_t)>& body_of,
                        const ChildOptions& options) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  call_hook(hooks.prepare, "preparing");
  std::fflush(nullptr);
  std::set<pid_t> live;
  for (;;) {
    pollfd p{socket, POLLIN, 0};
    const int ready = poll(&p, 1, live.empty() ? -1 : 5);
    int status = 0;
    for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
      live.erase(pid);
      Message m;
      m.kind = Kind::exited;
      m.pid = pid;
      m.status = status;
      send_message(socket, m);
    }
    if (ready <= 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    Message request;
    int fds[2];
    const int got = receive_message(socket, request, fds);
    if (got <= 0) {  // the caller is done (or gone): so are its children
      for (pid_t pid : live) kill(-pid, SIGKILL);
      _exit(0);
    }
    if (request.kind != Kind::start) continue;
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    call_hook(hooks.before_fork, "before_fork");
    const pid_t pid = fork();
    if (pid == 0) {
      close(socket);
      if (hooks.after_fork_child) hooks.after_fork_child();
      run_child_body(body_of(request.task), fds[0], fds[1], options);
    }
    const int fork_errno = errno;
    call_hook(hooks.after_fork_parent, "after_fork_parent");
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
    Message answer;
    answer.kind = Kind::started;
    answer.task = request.task;
    answer.pid = pid;
    answer.error = pid < 0 ? fork_errno : 0;
    if (pid > 0) {
      setpgid(pid, pid);
      live.insert(pid);
    }
    send_message(socket, answer);
  }
}

}  // namespace

std::unique_ptr<ForkServerClient> ForkServerClient::start(const ForkServer& hooks,
                                                          const std::function<ChildBody(std::size_t)>& body_of,
                                                          const ChildOptions& options) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return nullptr;
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    const int saved = errno;
    close(sv[0]);
    close(sv[1]);
    errno = saved;
    return nullptr;
  }
  if (pid == 0) {
    close(sv[0]);
    serve(sv[1], hooks, body_of, options);
  }
  close(sv[1]);
  return std::unique_ptr<ForkServerClient>(new ForkServerClient(pid, sv[0]));
}

ForkServerClient::~ForkServerClient() {
  if (socket_ >= 0) close(socket_);
  if (pid_ > 0) {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

bool ForkServerClient::receive(int timeout_ms) {
  if (lost_) return false;
  pollfd p{socket_, POLLIN, 0};
  const int ready = poll(&p, 1, timeout_ms);
  if (ready == 0 || (ready < 0 && errno == EINTR)) return false;
  Message m;
  int fds[2];
  if (ready < 0 || receive_message(socket_, m, fds) <= 0) {
    lost_ = true;
    return false;
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  if (m.kind == Kind::exited) {
    exited_[m.pid] = m.status;
  } else if (m.kind == Kind::started) {
    answered_ = true;
    last_started_ = m.pid;
    last_errno_ = m.error;
  }
  return true;
}

pid_t ForkServerClient::spawn(std::size_t task, int result_write, int output_write) {
  Message m;
  m.kind = Kind::start;
  m.task = task;
  const int fds[2] = {result_write, output_write};
  if (lost_ || !send_message(socket_, m, fds, output_write >= 0 ? 2 : 1)) {
    lost_ = true;
    errno = ECHILD;
    return -1;
  }
  answered_ = false;
  while (!answered_) {
    if (!receive(-1) && lost_) {
      errno = ECHILD;
      return -1;
    }
  }
  if (last_started_ < 0) errno = last_errno_;
  return last_started_;
}

void ForkServerClient::collect() {
  while (receive(0)) {
  }
}

bool ForkServerClient::wait_for(pid_t pid, int limit_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
  while (exited_.count(pid) == 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || lost_) return false;
    receive(static_cast<int>(left.count()));
  }
  return true;
}

}  // namespace stagekit::testing::detail
