// node:constants - the deprecated flat module of Node's constants that old
// packages (graceful-fs) still require: the file system ones, errno
// numbers and signal numbers as on Linux.
import { constants as fsConstants } from "ext:outpost_node/107_fs.js";

const errno = {
  E2BIG: 7,
  EACCES: 13,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  EAGAIN: 11,
  EBADF: 9,
  EBUSY: 16,
  ECONNABORTED: 103,
  ECONNREFUSED: 111,
  ECONNRESET: 104,
  EEXIST: 17,
  EINTR: 4,
  EINVAL: 22,
  EIO: 5,
  EISDIR: 21,
  EMFILE: 24,
  ENAMETOOLONG: 36,
  ENOENT: 2,
  ENOSPC: 28,
  ENOSYS: 38,
  ENOTDIR: 20,
  ENOTEMPTY: 39,
  EPERM: 1,
  EPIPE: 32,
  EROFS: 30,
  ETIMEDOUT: 110,
};

const signals = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

const constants = { ...errno, ...signals, ...fsConstants };

export default constants;
