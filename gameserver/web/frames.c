/* The WebSocket frames an honest client sends, split in C: gameserver.web._frames.
 *
 * aiohttp_seam.py uses it, when it is built, in front of aiohttp's own frame
 * parser. It splits only "plain" frames, and stops at the first frame that is
 * not one; from that frame on the seam hands the socket's bytes to aiohttp's
 * parser for good, so everything unusual (text, close, fragments, reserved
 * bits, unmasked or oversized frames, protocol errors) is parsed by aiohttp
 * exactly as without this module. A plain frame is:
 *
 *   - FIN set, RSV1-3 clear, masked (as RFC 6455 requires of a client);
 *   - binary, with a payload shorter than max_size (aiohttp's own limit,
 *     which refuses a payload of max_size bytes or more), or
 *   - ping or pong, with a payload of at most 125 bytes.
 *
 * For these, what is delivered is what aiohttp delivers: a binary frame's
 * payload as bytes, a ping's or pong's as (opcode, bytes). tests/test_frames.py
 * holds the two to the same messages over random streams cut at random points.
 *
 * Why C: a tick reads every socket of its room, and one read usually holds one
 * input. Read and split here, an input costs one call, one small bytes object
 * and no 64 KiB buffer per read: 2.6 -> 2.0 us per input through a tick read,
 * against os.read and aiohttp's parser behind the seam's Python wrappers
 * (docs/BENCHMARKS.md, "The C frame splitter").
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define OP_BINARY 0x2
#define OP_PING 0x9
#define OP_PONG 0xA
#define READ_BUFFER 65536

/* A tick's read lands here when no partial frame is left from the last one.
 * The GIL is held from the read to the last payload copied out of it. */
static unsigned char read_buffer[READ_BUFFER];

/* Split the plain frames of buf[start:size] into frames (a list), stopping
 * once at least limit bytes are consumed. *end is where splitting stopped;
 * *general is 1 when it stopped at a frame aiohttp must parse, 0 when at the
 * end of what is complete (or at the limit). Returns -1 on a Python error. */
static int
split_into(const unsigned char *buf, Py_ssize_t size, Py_ssize_t start,
           Py_ssize_t max_size, Py_ssize_t limit, PyObject *frames,
           Py_ssize_t *end, int *general)
{
    Py_ssize_t pos = start;
    *general = 0;
    while (pos - start < limit && size - pos >= 2) {
        unsigned int b0 = buf[pos], b1 = buf[pos + 1];
        unsigned int opcode = b0 & 0x0F;
        uint64_t length = b1 & 0x7F;
        Py_ssize_t head = 2;
        if ((b0 & 0xF0) != 0x80 || !(b1 & 0x80) ||
            (opcode != OP_BINARY && opcode != OP_PING && opcode != OP_PONG)) {
            *general = 1;  /* not final, reserved bits, unmasked, or another opcode */
            break;
        }
        if (opcode != OP_BINARY) {
            if (length > 125) {
                *general = 1;  /* aiohttp's protocol error */
                break;
            }
        }
        else if (length == 126) {
            if (size - pos < 4) {
                break;
            }
            length = ((uint64_t)buf[pos + 2] << 8) | buf[pos + 3];
            head = 4;
        }
        else if (length == 127) {
            if (size - pos < 10) {
                break;
            }
            length = 0;
            for (int i = 2; i < 10; i++) {
                length = (length << 8) | buf[pos + i];
            }
            head = 10;
        }
        if (opcode == OP_BINARY && length >= (uint64_t)max_size) {
            *general = 1;  /* too big: aiohttp closes with 1009 */
            break;
        }
        if ((uint64_t)(size - pos - head) < 4 + length) {
            break;  /* incomplete: the rest comes with a later read */
        }
        const unsigned char *mask = buf + pos + head;
        const unsigned char *masked = mask + 4;
        Py_ssize_t n = (Py_ssize_t)length;
        PyObject *payload = PyBytes_FromStringAndSize(NULL, n);
        if (payload == NULL) {
            return -1;
        }
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(payload);
        for (Py_ssize_t i = 0; i < n; i++) {
            out[i] = masked[i] ^ mask[i & 3];
        }
        PyObject *item = payload;
        if (opcode != OP_BINARY) {
            item = Py_BuildValue("(iN)", (int)opcode, payload);
            if (item == NULL) {
                return -1;
            }
        }
        int failed = PyList_Append(frames, item);
        Py_DECREF(item);
        if (failed) {
            return -1;
        }
        pos += head + 4 + n;
    }
    *end = pos;
    return 0;
}

static int
sizes(PyObject *const *args, Py_ssize_t *max_size, Py_ssize_t *limit)
{
    *max_size = PyLong_AsSsize_t(args[0]);
    if (*max_size == -1 && PyErr_Occurred()) {
        return -1;
    }
    *limit = PyLong_AsSsize_t(args[1]);
    if (*limit == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*max_size < 1 || *limit < 1) {
        PyErr_SetString(PyExc_ValueError, "max_size and limit must be positive");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(split_doc,
"split(data, start, max_size, limit) -> (frames, end, general)\n\n"
"The plain frames of data[start:], stopping once at least limit bytes are\n"
"consumed. frames holds a binary frame's payload as bytes, a ping's or pong's\n"
"as (opcode, bytes). end is where splitting stopped: at the limit, at a frame\n"
"not yet complete, or (general True) at a frame for aiohttp's parser.");

static PyObject *
split(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    Py_ssize_t start, max_size, limit, end;
    int general;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "split() takes 4 arguments");
        return NULL;
    }
    start = PyLong_AsSsize_t(args[1]);
    if ((start == -1 && PyErr_Occurred()) || sizes(args + 2, &max_size, &limit) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (start < 0 || start > data.len) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "start is outside data");
        return NULL;
    }
    PyObject *frames = PyList_New(0);
    if (frames == NULL ||
        split_into(data.buf, data.len, start, max_size, limit, frames, &end, &general) < 0) {
        PyBuffer_Release(&data);
        Py_XDECREF(frames);
        return NULL;
    }
    PyBuffer_Release(&data);
    return Py_BuildValue("(NnO)", frames, end, general ? Py_True : Py_False);
}

PyDoc_STRVAR(read_split_doc,
"read_split(fd, tail, max_size, limit) -> (frames, rest, general) | None\n\n"
"Read what the non-blocking descriptor fd holds (up to 64 KiB) after tail (the\n"
"bytes left unsplit by the last call), and split it as split() does. rest is\n"
"what is left unsplit, as bytes. None when the peer has closed its side;\n"
"OSError (BlockingIOError when there is nothing to read) as os.read raises it.");

static PyObject *
read_split(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t max_size, limit, end, got;
    int general;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "read_split() takes 4 arguments");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if ((fd == -1 && PyErr_Occurred()) || sizes(args + 2, &max_size, &limit) < 0) {
        return NULL;
    }
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "fd is not a descriptor");
        return NULL;
    }
    if (!PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "tail must be bytes");
        return NULL;
    }
    Py_ssize_t kept = PyBytes_GET_SIZE(args[1]);
    unsigned char *buf = read_buffer;
    if (kept) {  /* a partial frame from the last read: rare, so allocated */
        buf = PyMem_Malloc(kept + READ_BUFFER);
        if (buf == NULL) {
            return PyErr_NoMemory();
        }
        memcpy(buf, PyBytes_AS_STRING(args[1]), kept);
    }
    /* Non-blocking: the GIL is kept, as releasing it costs more than the read. */
    while ((got = read((int)fd, buf + kept, READ_BUFFER)) < 0 && errno == EINTR) {
        if (PyErr_CheckSignals() < 0) {
            goto fail;
        }
    }
    if (got < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    if (got == 0) {
        if (kept) {
            PyMem_Free(buf);
        }
        Py_RETURN_NONE;
    }
    Py_ssize_t size = kept + got;
    PyObject *frames = PyList_New(0);
    if (frames == NULL) {
        goto fail;
    }
    if (split_into(buf, size, 0, max_size, limit, frames, &end, &general) < 0) {
        Py_DECREF(frames);
        goto fail;
    }
    PyObject *rest = PyBytes_FromStringAndSize((const char *)buf + end, size - end);
    if (kept) {
        PyMem_Free(buf);
    }
    if (rest == NULL) {
        Py_DECREF(frames);
        return NULL;
    }
    return Py_BuildValue("(NNO)", frames, rest, general ? Py_True : Py_False);
fail:
    if (kept) {
        PyMem_Free(buf);
    }
    return NULL;
}

static PyMethodDef methods[] = {
    {"split", (PyCFunction)(void (*)(void))split, METH_FASTCALL, split_doc},
    {"read_split", (PyCFunction)(void (*)(void))read_split, METH_FASTCALL, read_split_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gameserver.web._frames",
    .m_doc = "The WebSocket frames an honest client sends, split in C (see frames.c).",
    .m_size = -1,
    .m_methods = methods,
};

/* The SHA-256 of this file as it was compiled (frames_build.py defines it), so that a
 * test can tell a stale in-place build from a current one. */
#ifndef SOURCE_SHA256
#define SOURCE_SHA256 ""
#endif

PyMODINIT_FUNC
PyInit__frames(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "source_sha256", SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
