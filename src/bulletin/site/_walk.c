/* The walk of content/ (walk.walk_items), compiled for the case every site has: folders and
 * files, no links, names in UTF-8, everything readable. A rebuild with nothing to do is
 * mostly this walk; here it costs about a third of the Python loop's time, which makes a
 * Python object for every stat.
 *
 * walk(root, prefix, stamp_type) returns (files, stamps) exactly as walk_items would: the
 * item files in the same order, (relpath, path) pairs and stamp_type(size, mtime_ns,
 * ctime_ns, inode) tuples. It returns None, having decided nothing, as soon as it meets
 * anything walk_items has a rule or a message for: a link, an entry of unknown type, a name
 * that is not UTF-8, a folder that cannot be opened, a stat that fails, a folder reached
 * twice, a time outside what 64 bits of nanoseconds hold, a folder whose whole path is too
 * long to open by (the Python walk opens folders by path, this one by descriptor). The Python walk then runs from
 * the start, so every problem is reported by one piece of code.
 *
 * `root` is os.fspath of a pathlib.Path (normalised: no '//' or '/./'), as walk_items gives it.
 *
 * tests/test_walk_compiled.py walks every tree it builds both ways and finds no difference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifdef _WIN32
#error "the compiled walk needs POSIX *at() calls; the Python walk is used instead"
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __APPLE__ /* the same fields under their BSD names */
#define st_mtim st_mtimespec
#define st_ctim st_ctimespec
#endif

#define NS 1000000000LL
#define MAX_SECONDS 9000000000LL /* seconds * NS fits a long long */
#define MAX_LEVEL 200            /* folders deeper are left to the Python walk's own stack */

typedef struct {
    char *name;
    unsigned char type;
} Entry;

typedef struct {
    dev_t dev;
    ino_t ino;
    int used;
} Folder;

static size_t slot(dev_t dev, ino_t ino, size_t capacity) {
    unsigned long long h = ((unsigned long long)ino ^ ((unsigned long long)dev << 32)) * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 32) & (capacity - 1);
}

typedef struct {
    PyObject *files;  /* list of (relpath, path) */
    PyObject *stamps; /* list of stamp_type */
    PyObject *relpath_base; /* prefix + "/" */
    PyObject *path_base;    /* root, with one trailing separator */
    PyTypeObject *stamp_type;
    size_t root_length; /* in bytes, with the separator after it */
    Folder *seen; /* every folder entered, to refuse one reached twice */
    size_t folders, capacity;
    int unusual; /* met something the Python walk has a rule for: give up */
} Walk;

static int by_name(const void *a, const void *b) {
    /* Byte order of UTF-8 is code point order, the order of Python's sorted() on str. */
    return strcmp(((const Entry *)a)->name, ((const Entry *)b)->name);
}

static int ends_with(const char *name, size_t n, const char *suffix) {
    size_t m = strlen(suffix);
    return n >= m && memcmp(name + n - m, suffix, m) == 0;
}

static int content_name(const char *name, size_t n) { /* walk.CONTENT_SUFFIXES */
    return ends_with(name, n, ".md") || ends_with(name, n, ".markdown") || ends_with(name, n, ".html");
}

static int ends_with_any_case(const char *name, size_t n, const char *suffix) {
    size_t m = strlen(suffix);
    return n >= m && strncasecmp(name + n - m, suffix, m) == 0;
}

static int content_name_any_case(const char *name, size_t n) { /* Story.MD: walk.py warns */
    return ends_with_any_case(name, n, ".md") || ends_with_any_case(name, n, ".markdown") ||
           ends_with_any_case(name, n, ".html");
}

/* The folders entered, as an open-addressing set of (device, inode): a site may keep each
 * item in a folder of its own, tens of thousands of them. */
static int enter(Walk *w, const struct stat *st) {
    if (2 * (w->folders + 1) > w->capacity) {
        size_t capacity = w->capacity ? 2 * w->capacity : 256;
        Folder *grown = calloc(capacity, sizeof(Folder));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i < w->capacity; i++) {
            if (w->seen[i].used) {
                size_t at = slot(w->seen[i].dev, w->seen[i].ino, capacity);
                while (grown[at].used)
                    at = (at + 1) & (capacity - 1);
                grown[at] = w->seen[i];
            }
        }
        free(w->seen);
        w->seen = grown;
        w->capacity = capacity;
    }
    size_t at = slot(st->st_dev, st->st_ino, w->capacity);
    while (w->seen[at].used) {
        if (w->seen[at].dev == st->st_dev && w->seen[at].ino == st->st_ino) {
            w->unusual = 1; /* reached twice: walk_items says which link does it */
            return 0;
        }
        at = (at + 1) & (w->capacity - 1);
    }
    w->seen[at] = (Folder){st->st_dev, st->st_ino, 1};
    w->folders++;
    return 1;
}

static PyObject *stamp(Walk *w, const struct stat *st) {
    if (st->st_mtim.tv_sec > MAX_SECONDS || st->st_mtim.tv_sec < -MAX_SECONDS ||
        st->st_ctim.tv_sec > MAX_SECONDS || st->st_ctim.tv_sec < -MAX_SECONDS) {
        w->unusual = 1;
        return NULL;
    }
    PyObject *values[4] = {
        PyLong_FromLongLong((long long)st->st_size),
        PyLong_FromLongLong(st->st_mtim.tv_sec * NS + st->st_mtim.tv_nsec),
        PyLong_FromLongLong(st->st_ctim.tv_sec * NS + st->st_ctim.tv_nsec),
        PyLong_FromUnsignedLongLong((unsigned long long)st->st_ino),
    };
    PyObject *result = NULL;
    if (values[0] && values[1] && values[2] && values[3]) {
        /* A tuple of the NamedTuple's class, made as tuple.__new__(stamp_type, values) makes it. */
        result = w->stamp_type->tp_alloc(w->stamp_type, 4);
    }
    for (int i = 0; i < 4; i++) {
        if (result != NULL)
            PyTuple_SET_ITEM(result, i, values[i]);
        else
            Py_XDECREF(values[i]);
    }
    return result;
}

/* One item file: its (relpath, path) and its stamp appended. `relative`: from content/. */
static int add_file(Walk *w, int folder, const char *name, const char *relative, size_t n) {
    struct stat st;
    if (fstatat(folder, name, &st, 0) != 0) {
        w->unusual = 1; /* walk_items records it with the stamp of a file it could not stat */
        return 0;
    }
    PyObject *rel = PyUnicode_DecodeUTF8(relative, (Py_ssize_t)n, "strict");
    if (rel == NULL)
        return -1; /* checked before: cannot fail but on memory */
    PyObject *relpath = PyUnicode_Concat(w->relpath_base, rel);
    PyObject *path = PyUnicode_Concat(w->path_base, rel);
    Py_DECREF(rel);
    PyObject *pair = (relpath && path) ? PyTuple_Pack(2, relpath, path) : NULL;
    Py_XDECREF(relpath);
    Py_XDECREF(path);
    if (pair == NULL)
        return -1;
    int failed = PyList_Append(w->files, pair);
    Py_DECREF(pair);
    if (failed)
        return -1;
    PyObject *made = stamp(w, &st);
    if (made == NULL)
        return w->unusual ? 0 : -1;
    failed = PyList_Append(w->stamps, made);
    Py_DECREF(made);
    return failed ? -1 : 0;
}

static int is_text(const char *name, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)name[i] >= 0x80) {
            PyObject *decoded = PyUnicode_DecodeUTF8(name, (Py_ssize_t)n, "strict");
            if (decoded == NULL) {
                PyErr_Clear();
                return 0;
            }
            Py_DECREF(decoded);
            return 1;
        }
    }
    return 1;
}

static int read_entries(DIR *dir, Entry **entries, size_t *count) {
    size_t capacity = 0;
    struct dirent *found;
    errno = 0;
    while ((found = readdir(dir)) != NULL) {
        const char *name = found->d_name;
        if (name[0] == '.') /* hidden, and "." and ".." */
            continue;
        if (*count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            Entry *grown = realloc(*entries, capacity * sizeof(Entry));
            if (grown == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            *entries = grown;
        }
        char *copied = strdup(name);
        if (copied == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        (*entries)[*count].name = copied;
        (*entries)[*count].type = found->d_type;
        (*count)++;
        errno = 0;
    }
    return errno != 0 ? 1 : 0;
}

/* A folder opened for reading by name and stat, or NULL (the descriptor closed). */
static DIR *opened(int descriptor, struct stat *st) {
    DIR *dir = NULL;
    if (descriptor >= 0 && fstat(descriptor, st) == 0)
        dir = fdopendir(descriptor);
    if (dir == NULL && descriptor >= 0)
        close(descriptor);
    return dir;
}

/* The folder's item files, then each of its folders in name order (walk_items' stack pops
 * them in that order). `relative`: the folder's path from content/, with its trailing '/'. */
static int walk_folder(Walk *w, DIR *dir, char *relative, size_t depth, int level) {
    if (level > MAX_LEVEL) {
        w->unusual = 1;
        return 0;
    }
    int folder = dirfd(dir);
    Entry *entries = NULL;
    size_t count = 0;
    int status = read_entries(dir, &entries, &count);
    if (status > 0)
        w->unusual = 1;
    if (status == 0 && count > 1)
        qsort(entries, count, sizeof(Entry), by_name);
    char *buffer = NULL;
    for (size_t pass = 0; pass < 2 && status == 0 && !w->unusual; pass++) {
        for (size_t i = 0; i < count && status == 0 && !w->unusual; i++) {
            const char *name = entries[i].name;
            size_t n = strlen(name);
            unsigned char type = entries[i].type;
            if (type != DT_DIR && type != DT_REG && type != DT_FIFO && type != DT_SOCK &&
                type != DT_CHR && type != DT_BLK) {
                w->unusual = 1; /* a link, or a file system that does not say */
                break;
            }
            if (!is_text(name, n)) {
                w->unusual = 1;
                break;
            }
            if ((type == DT_DIR) != (pass == 1))
                continue;
            if (type != DT_DIR && !content_name(name, n)) {
                if (content_name_any_case(name, n)) {
                    w->unusual = 1; /* walk.py warns that it is not read */
                    break;
                }
                continue;
            }
            if (type == DT_DIR && name[0] == '_')
                continue;
            char *grown = realloc(buffer, depth + n + 2);
            if (grown == NULL) {
                PyErr_NoMemory();
                status = -1;
                break;
            }
            buffer = grown;
            memcpy(buffer, relative, depth);
            memcpy(buffer + depth, name, n);
            if (type != DT_DIR) {
                status = add_file(w, folder, name, buffer, depth + n);
                continue;
            }
            buffer[depth + n] = '/';
            buffer[depth + n + 1] = '\0';
            if (w->root_length + depth + n + 1 >= PATH_MAX) {
                w->unusual = 1; /* walk_items reports it: "File name too long" */
                break;
            }
            struct stat st;
            DIR *inner = opened(openat(folder, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), &st);
            if (inner == NULL) {
                w->unusual = 1;
                break;
            }
            status = enter(w, &st);
            if (status == 1)
                status = walk_folder(w, inner, buffer, depth + n + 1, level + 1);
            closedir(inner);
        }
    }
    free(buffer);
    for (size_t i = 0; i < count; i++)
        free(entries[i].name);
    free(entries);
    return status < 0 ? -1 : 0;
}

static PyObject *walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1]) || !PyType_Check(args[2]) ||
        !PyType_IsSubtype((PyTypeObject *)args[2], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "walk(root: str, prefix: str, stamp_type: type[tuple])");
        return NULL;
    }
    /* What tuple.__new__(stamp_type, ...) refuses (os.stat_result and other struct
     * sequences, whose objects are larger than their items) is refused here too. */
    PyObject *fields = PyObject_GetAttrString(args[2], "_fields");
    int four = fields != NULL && PyTuple_Check(fields) && PyTuple_GET_SIZE(fields) == 4;
    Py_XDECREF(fields);
    PyObject *probe = four ? PyObject_CallMethod((PyObject *)&PyTuple_Type, "__new__", "O(iiii)", args[2], 0, 0,
                                                 0, 0)
                           : NULL;
    if (probe == NULL) {
        if (!four) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "walk: stamp_type must be a NamedTuple of four fields");
        }
        return NULL;
    }
    Py_DECREF(probe);
    PyObject *encoded = NULL;
    if (!PyUnicode_FSConverter(args[0], &encoded))
        return NULL;
    size_t root_length = (size_t)PyBytes_GET_SIZE(encoded) + 1;
    struct stat st;
    DIR *root = opened(open(PyBytes_AS_STRING(encoded), O_RDONLY | O_DIRECTORY | O_CLOEXEC), &st);
    Py_DECREF(encoded);
    if (root == NULL)
        Py_RETURN_NONE; /* walk_items says why content/ cannot be read */
    Walk w = {0};
    w.stamp_type = (PyTypeObject *)args[2];
    w.root_length = root_length;
    w.files = PyList_New(0);
    w.stamps = PyList_New(0);
    w.relpath_base = PyUnicode_FromFormat("%U/", args[1]);
    Py_ssize_t length = PyUnicode_GET_LENGTH(args[0]);
    if (length > 0 && PyUnicode_READ_CHAR(args[0], length - 1) == '/') {
        Py_INCREF(args[0]);
        w.path_base = args[0];
    } else {
        w.path_base = PyUnicode_FromFormat("%U/", args[0]);
    }
    PyObject *result = NULL;
    int status = -1;
    if (w.files && w.stamps && w.relpath_base && w.path_base && enter(&w, &st) == 1) {
        char empty[1] = {'\0'};
        status = walk_folder(&w, root, empty, 0, 0);
    }
    closedir(root);
    if (status == 0) {
        if (w.unusual)
            result = Py_NewRef(Py_None);
        else
            result = PyTuple_Pack(2, w.files, w.stamps);
    }
    Py_XDECREF(w.files);
    Py_XDECREF(w.stamps);
    Py_XDECREF(w.relpath_base);
    Py_XDECREF(w.path_base);
    free(w.seen);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL,
     "walk(root, prefix, stamp_type): (files, stamps) as walk_items finds them, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
