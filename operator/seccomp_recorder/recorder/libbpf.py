"""ctypes bindings to the system libbpf (libbpf.so.1): the recorder's one seam to the kernel.

Only the calls the recorder needs are bound, each with declared argument and
result types. libbpf 1.x reports errors as a NULL pointer or a negative errno
and also sets errno, so every failure is raised as an OSError that names the
operation and the object it was applied to.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

LIBRARY_NAME = "libbpf.so.1"


class _OpenOptions(ctypes.Structure):
    """The leading fields of struct bpf_object_open_opts (libbpf 1.0 to 1.5).

    libbpf accepts a shorter struct than its own as long as `sz` says how long
    it is, so only the fields up to btf_custom_path are declared.
    """

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        ("_removed_attach_prog_fd", ctypes.c_uint32),
        ("kconfig", ctypes.c_char_p),
        ("btf_custom_path", ctypes.c_char_p),
    ]


SampleCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_PrintCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

# libbpf's print levels (enum libbpf_print_level).
_LEVEL_WARN, _LEVEL_INFO, _LEVEL_DEBUG = 0, 1, 2


class LibbpfNotFound(OSError):
    """libbpf.so.1 is not installed."""


def _declare(lib: ctypes.CDLL, name: str, restype: object, *argtypes: object) -> None:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = list(argtypes)


def _load_library() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    try:
        lib = ctypes.CDLL(LIBRARY_NAME, use_errno=True)
    except OSError as error:
        raise LibbpfNotFound(
            errno.ENOENT,
            f"cannot load {LIBRARY_NAME} ({error}): install libbpf 1.x "
            "(Debian and Ubuntu: apt install libbpf1)",
        ) from error
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    p = ctypes.c_void_p
    _declare(lib, "libbpf_set_print", p, _PrintCallback)
    _declare(lib, "bpf_object__open_file", p, ctypes.c_char_p, ctypes.POINTER(_OpenOptions))
    _declare(lib, "bpf_object__load", ctypes.c_int, p)
    _declare(lib, "bpf_object__close", None, p)
    _declare(lib, "bpf_object__next_map", p, p, p)
    _declare(lib, "bpf_object__next_program", p, p, p)
    _declare(lib, "bpf_map__name", ctypes.c_char_p, p)
    _declare(lib, "bpf_map__fd", ctypes.c_int, p)
    _declare(lib, "bpf_map__max_entries", ctypes.c_uint32, p)
    _declare(lib, "bpf_map__initial_value", p, p, ctypes.POINTER(ctypes.c_size_t))
    _declare(lib, "bpf_map__set_pin_path", ctypes.c_int, p, ctypes.c_char_p)
    _declare(lib, "bpf_map__unpin", ctypes.c_int, p, ctypes.c_char_p)
    _declare(lib, "bpf_program__name", ctypes.c_char_p, p)
    _declare(lib, "bpf_program__set_autoload", ctypes.c_int, p, ctypes.c_bool)
    _declare(lib, "bpf_program__autoload", ctypes.c_bool, p)
    _declare(lib, "bpf_program__attach", p, p)
    _declare(lib, "bpf_link__destroy", ctypes.c_int, p)
    _declare(lib, "bpf_link__pin", ctypes.c_int, p, ctypes.c_char_p)
    _declare(lib, "bpf_link__unpin", ctypes.c_int, p)
    _declare(lib, "bpf_link__open", p, ctypes.c_char_p)
    _declare(lib, "bpf_link__disconnect", None, p)
    _declare(lib, "bpf_map_get_next_key", ctypes.c_int, ctypes.c_int, p, p)
    _declare(lib, "bpf_map_lookup_elem", ctypes.c_int, ctypes.c_int, p, p)
    _declare(lib, "bpf_map_update_elem", ctypes.c_int, ctypes.c_int, p, p, ctypes.c_uint64)
    _declare(lib, "bpf_map_delete_elem", ctypes.c_int, ctypes.c_int, p)
    _declare(lib, "ring_buffer__new", p, ctypes.c_int, SampleCallback, p, p)
    _declare(lib, "ring_buffer__poll", ctypes.c_int, p, ctypes.c_int)
    _declare(lib, "ring_buffer__free", None, p)
    _declare(libc, "vsnprintf", ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, p)
    return lib, libc


_lib: ctypes.CDLL | None = None
_libc: ctypes.CDLL | None = None
_lib_lock = threading.Lock()
# libbpf's recent warnings, kept to explain a failed load or attach.
_recent_messages: deque[str] = deque(maxlen=40)


def _print_from_libbpf(level: int, fmt: bytes | None, args: int | None) -> int:
    assert _libc is not None
    buffer = ctypes.create_string_buffer(4096)
    _libc.vsnprintf(buffer, len(buffer), fmt, args)
    message = buffer.value.decode(errors="replace").rstrip()
    if level == _LEVEL_DEBUG:
        logger.debug("libbpf: %s", message)
        return 0
    _recent_messages.append(message)
    if level == _LEVEL_WARN:
        logger.debug("libbpf warning: %s", message)
    else:
        logger.debug("libbpf: %s", message)
    return 0


# NB: ctypes callbacks must stay referenced for as long as C code may call them.
_print_callback = _PrintCallback(_print_from_libbpf)


def library() -> ctypes.CDLL:
    """Load libbpf once and route its messages into Python logging."""
    global _lib, _libc
    with _lib_lock:
        if _lib is None:
            _lib, _libc = _load_library()
            _lib.libbpf_set_print(_print_callback)
        return _lib


def recent_messages() -> list[str]:
    """Return libbpf's warnings since the last call, and forget them."""
    messages = list(_recent_messages)
    _recent_messages.clear()
    return messages


def _raise_errno(what: str, code: int | None = None) -> None:
    number = abs(code) if code else ctypes.get_errno()
    if not number:
        number = errno.EINVAL
    raise OSError(number, f"{what}: {os.strerror(number)}")


class Map:
    """A BPF map, addressed by its file descriptor."""

    def __init__(self, name: str, fd: int, handle: int | None = None) -> None:
        self.name = name
        self.fd = fd
        self.handle = handle

    @property
    def max_entries(self) -> int:
        """The map's capacity as loaded (max_entries), or 0 when the map has no libbpf handle."""
        if self.handle is None:
            return 0
        return int(library().bpf_map__max_entries(self.handle))

    def keys(self, key_type: type[ctypes.Structure | ctypes.c_uint32]) -> Iterator[bytes]:
        """Yield every key's bytes. Keys deleted meanwhile are skipped, new ones may be missed."""
        lib = library()
        size = ctypes.sizeof(key_type)
        current = ctypes.create_string_buffer(size)
        following = ctypes.create_string_buffer(size)
        previous: ctypes.Array[ctypes.c_char] | None = None
        while True:
            result = lib.bpf_map_get_next_key(
                self.fd, None if previous is None else ctypes.byref(previous), following
            )
            if result != 0:
                if ctypes.get_errno() == errno.ENOENT or result == -errno.ENOENT:
                    return
                _raise_errno(f"iterating BPF map {self.name}", result)
            ctypes.memmove(current, following, size)
            yield current.raw
            previous = ctypes.create_string_buffer(current.raw, size)

    def lookup(self, key: ctypes._CData, value: ctypes._CData) -> bool:
        """Fill `value` for `key`; return False when the key is absent."""
        result = library().bpf_map_lookup_elem(self.fd, ctypes.byref(key), ctypes.byref(value))
        if result == 0:
            return True
        if ctypes.get_errno() == errno.ENOENT or result == -errno.ENOENT:
            return False
        _raise_errno(f"looking up a key in BPF map {self.name}", result)
        return False

    def update(self, key: ctypes._CData, value: ctypes._CData, flags: int = 0) -> None:
        result = library().bpf_map_update_elem(
            self.fd, ctypes.byref(key), ctypes.byref(value), flags
        )
        if result != 0:
            _raise_errno(f"updating BPF map {self.name}", result)

    def delete(self, key: ctypes._CData) -> bool:
        """Delete `key`; return False when it was already absent."""
        result = library().bpf_map_delete_elem(self.fd, ctypes.byref(key))
        if result == 0:
            return True
        if ctypes.get_errno() == errno.ENOENT or result == -errno.ENOENT:
            return False
        _raise_errno(f"deleting a key from BPF map {self.name}", result)
        return False


class Object:
    """A BPF object file opened (and later loaded and attached) through libbpf."""

    def __init__(self, path: Path, *, btf_path: Path | None = None) -> None:
        lib = library()
        self.path = path
        self._links: list[int] = []
        self._link_names: dict[str, int] = {}
        options = _OpenOptions()
        options.sz = ctypes.sizeof(_OpenOptions)
        if btf_path is not None:
            options.btf_custom_path = os.fsencode(btf_path)
        ctypes.set_errno(0)
        handle = lib.bpf_object__open_file(os.fsencode(path), ctypes.byref(options))
        if not handle:
            _raise_errno(f"opening BPF object {path}")
        self._handle: int | None = handle

    @property
    def handle(self) -> int:
        if self._handle is None:
            raise ValueError(f"BPF object {self.path} is closed")
        return self._handle

    def _map_handles(self) -> Iterator[tuple[str, int]]:
        lib = library()
        position = lib.bpf_object__next_map(self.handle, None)
        while position:
            yield lib.bpf_map__name(position).decode(), position
            position = lib.bpf_object__next_map(self.handle, position)

    def set_read_only_data(self, data: bytes) -> None:
        """Write `data` at the start of the object's .rodata before load."""
        lib = library()
        for name, handle in self._map_handles():
            if not name.endswith(".rodata"):
                continue
            size = ctypes.c_size_t()
            address = lib.bpf_map__initial_value(handle, ctypes.byref(size))
            if not address or size.value < len(data):
                raise OSError(errno.EINVAL, f"{name} of {self.path} is too small for the settings")
            ctypes.memmove(address, data, len(data))
            return
        raise OSError(errno.ENOENT, f"BPF object {self.path} has no .rodata section")

    def set_pin_path(self, map_name: str, path: Path) -> None:
        """Pin `map_name` at `path` on load, or reuse the map already pinned there."""
        for name, handle in self._map_handles():
            if name == map_name:
                result = library().bpf_map__set_pin_path(handle, os.fsencode(path))
                if result != 0:
                    _raise_errno(f"setting the pin path of BPF map {map_name} to {path}", result)
                return
        raise KeyError(f"BPF object {self.path} has no map named {map_name!r}")

    def load(self) -> None:
        ctypes.set_errno(0)
        result = library().bpf_object__load(self.handle)
        if result != 0:
            _raise_errno(f"loading BPF object {self.path}", result)

    def map(self, name: str) -> Map:
        lib = library()
        for map_name, handle in self._map_handles():
            if map_name == name:
                return Map(name, lib.bpf_map__fd(handle), handle)
        raise KeyError(f"BPF object {self.path} has no map named {name!r}")

    def _loaded_programs(self) -> Iterator[tuple[str, int]]:
        """Yield (name, handle) of every program that is loaded (autoload not turned off)."""
        lib = library()
        position = lib.bpf_object__next_program(self.handle, None)
        while position:
            if lib.bpf_program__autoload(position):
                yield lib.bpf_program__name(position).decode(), position
            position = lib.bpf_object__next_program(self.handle, position)

    def program_names(self) -> list[str]:
        return [name for name, _ in self._loaded_programs()]

    def skip_program(self, name: str) -> None:
        """Leave program `name` out of the load, and so out of attaching and pinning."""
        lib = library()
        position = lib.bpf_object__next_program(self.handle, None)
        while position:
            if lib.bpf_program__name(position).decode() == name:
                result = lib.bpf_program__set_autoload(position, False)
                if result != 0:
                    _raise_errno(f"leaving BPF program {name} out of the load", result)
                return
            position = lib.bpf_object__next_program(self.handle, position)
        raise KeyError(f"BPF object {self.path} has no program named {name!r}")

    def attach_all(self, on_attach: Callable[[str, int], None] | None = None) -> None:
        """Attach every loaded program at the point its ELF section names."""
        lib = library()
        for name, position in self._loaded_programs():
            ctypes.set_errno(0)
            link = lib.bpf_program__attach(position)
            if not link:
                _raise_errno(f"attaching BPF program {name}")
            self._links.append(link)
            self._link_names[name] = link
            if on_attach is not None:
                on_attach(name, link)

    def pin_links(self, paths: Callable[[str], Path]) -> None:
        """Pin every attached program's link at `paths(program name)`.

        A pinned link keeps its program attached after this process closes its
        descriptor or exits; removing the pin then detaches it. NB: the links must not
        be disconnected, because libbpf then never closes their descriptors and the
        programs stay attached for as long as this process lives.
        """
        for name, link in self._link_names.items():
            result = library().bpf_link__pin(link, os.fsencode(paths(name)))
            if result != 0:
                _raise_errno(f"pinning the link of BPF program {name} at {paths(name)}", result)

    def adopt_pinned_links(self, paths: Callable[[str], Path]) -> None:
        """Hold the links pinned at `paths(program name)` instead of attaching anew."""
        lib = library()
        for name, _ in self._loaded_programs():
            ctypes.set_errno(0)
            link = lib.bpf_link__open(os.fsencode(paths(name)))
            if not link:
                _raise_errno(f"opening the pinned link of BPF program {name}")
            self._links.append(link)
            self._link_names[name] = link

    def close(self) -> None:
        """Free the object and detach its programs, except those whose links are pinned."""
        lib = library()
        for link in self._links:
            lib.bpf_link__destroy(link)
        self._links.clear()
        self._link_names.clear()
        if self._handle is not None:
            lib.bpf_object__close(self._handle)
            self._handle = None


class RingBuffer:
    """A consumer of a BPF ring buffer map that calls `callback` with each record's bytes."""

    def __init__(self, ring: Map, callback: Callable[[bytes], None]) -> None:
        self._callback = callback
        # NB: kept on self so the C callback outlives every poll.
        self._sample = SampleCallback(self._on_sample)
        ctypes.set_errno(0)
        handle = library().ring_buffer__new(ring.fd, self._sample, None, None)
        if not handle:
            _raise_errno(f"opening ring buffer {ring.name}")
        self._handle: int | None = handle

    def _on_sample(self, _context: int | None, data: int | None, size: int) -> int:
        if data:
            self._callback(ctypes.string_at(data, size))
        return 0

    def poll(self, timeout_ms: int) -> int:
        """Deliver waiting records; return how many were delivered."""
        if self._handle is None:
            return 0
        result: int = library().ring_buffer__poll(self._handle, timeout_ms)
        if result < 0 and result != -errno.EINTR:
            _raise_errno("polling the recorder's ring buffer", result)
        return max(result, 0)

    def close(self) -> None:
        if self._handle is not None:
            library().ring_buffer__free(self._handle)
            self._handle = None
