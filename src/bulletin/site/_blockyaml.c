/* The block YAML reader of blockyaml.py, compiled: the same subset, read the same way, line
 * for line, six times faster (16 against 99 us for a seed-shaped item's front matter).
 * blockyaml.py is the reference: every rule here is one of its rules, and
 * tests/test_blockyaml.py reads every item the tests know, a corpus, thousands of mutated
 * texts and generated ones through both and finds no difference.
 *
 * read(text, first_line, fields_type) returns the mapping as nested fields_type objects
 * (dicts with `lines` and `names`) and lists, or None when the text leaves the subset. The
 * caller has already checked that `text` ends with a line break and holds no character that
 * needs libyaml (blockyaml._has_stray). The text is read as UTF-8; every byte that decides
 * anything is ASCII, so values are cut at character boundaries.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define DEPTH 40          /* blockyaml._DEPTH */
#define STACK (DEPTH + 4) /* a line opens at most two levels before DEPTH is checked */
#define KEY_TAIL 200      /* a key is a letter or '_' and at most 200 more characters */

static PyObject *LINES, *NAMES; /* interned "lines" and "names" */
static PyObject *EMPTY;         /* () */

typedef struct {
    const char *s;
    Py_ssize_t n;
    Py_ssize_t number; /* the line's index in the text, blank lines counted */
} Line;

typedef struct {
    Line *lines; /* the text's lines, blank ones left out */
    Py_ssize_t count;
    int blanks; /* whether any were left out */
    long long first_line;
    PyObject *fields_type;
    int stray; /* set when the text leaves the subset (no Python error) */
} Reader;

/* A line as blockyaml._LINE splits it: indentation, '- ' (or a lone '-'), 'key:' and the
 * spaces after it, and the rest. */
typedef struct {
    Py_ssize_t indent;
    int dash;
    const char *key; /* NULL when the line has none */
    Py_ssize_t key_n;
    const char *value;
    Py_ssize_t value_n;
} Parts;

static int key_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }

static int key_char(char c) { return key_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-'; }

/* blockyaml._INDICATORS, quotes among them */
static int indicator(char c) { return c != '\0' && strchr("-?:,[]{}#&*!|>'\"%@`", c) != NULL; }

static void split(const Line *line, Parts *p) {
    const char *s = line->s;
    Py_ssize_t n = line->n, i = 0;
    while (i < n && s[i] == ' ')
        i++;
    p->indent = i;
    p->dash = 0;
    if (i < n && s[i] == '-' && (i + 1 == n || s[i + 1] == ' ')) {
        p->dash = 1;
        i += i + 1 == n ? 1 : 2;
    }
    p->key = NULL;
    p->key_n = 0;
    if (i < n && key_start(s[i])) {
        Py_ssize_t j = i + 1;
        while (j < n && key_char(s[j]))
            j++;
        if (j - i - 1 <= KEY_TAIL && j < n && s[j] == ':' && (j + 1 == n || s[j + 1] == ' ')) {
            p->key = s + i;
            p->key_n = j - i;
            j++;
            while (j < n && s[j] == ' ')
                j++;
            i = j;
        }
    }
    p->value = s + i;
    p->value_n = n - i;
}

/* The keys met so far, spelled and folded: the same hundred-odd names start every item's
 * lines, and a string made once keeps its hash. Filled until full, never emptied. */
#define KEYS 1024
static struct {
    PyObject *name, *folded;
} keys[KEYS];

static unsigned long key_hash(const char *s, Py_ssize_t n) {
    unsigned long h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The key's spelling and its lower-cased form (new references), from the cache if it holds them. */
static int key_strings(const char *s, Py_ssize_t n, PyObject **name, PyObject **folded) {
    unsigned long slot = key_hash(s, n) % KEYS;
    for (int probe = 0; probe < 8; probe++, slot = (slot + 1) % KEYS) {
        PyObject *known = keys[slot].name;
        if (known == NULL)
            break;
        if (PyUnicode_GET_LENGTH(known) == n && memcmp(PyUnicode_DATA(known), s, (size_t)n) == 0) {
            *name = Py_NewRef(known);
            *folded = Py_NewRef(keys[slot].folded);
            return 0;
        }
    }
    char lower[KEY_TAIL + 1];
    for (Py_ssize_t i = 0; i < n; i++)
        lower[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
    *name = PyUnicode_FromStringAndSize(s, n);
    *folded = *name == NULL ? NULL : PyUnicode_FromStringAndSize(lower, n);
    if (*folded == NULL) {
        Py_XDECREF(*name);
        return -1;
    }
    if (keys[slot].name == NULL) {
        keys[slot].name = Py_NewRef(*name);
        keys[slot].folded = Py_NewRef(*folded);
    }
    return 0;
}

static PyObject *stray(Reader *r) {
    r->stray = 1;
    return NULL;
}

/* An empty fields_type mapping with empty `lines` and `names`, as its __init__ makes it
 * (which, called for each of an item's mappings, took a third of the reading). */
static PyObject *new_fields(Reader *r) {
    PyTypeObject *type = (PyTypeObject *)r->fields_type;
    PyObject *fields = type->tp_new(type, EMPTY, NULL);
    if (fields == NULL)
        return NULL;
    PyObject *lines = PyDict_New(), *names = PyDict_New();
    int failed = lines == NULL || names == NULL || PyObject_SetAttr(fields, LINES, lines) < 0 ||
                 PyObject_SetAttr(fields, NAMES, names) < 0;
    Py_XDECREF(lines);
    Py_XDECREF(names);
    if (failed)
        Py_CLEAR(fields);
    return fields;
}

static int is_null(const char *s, Py_ssize_t n) {
    return (n == 1 && s[0] == '~') ||
           (n == 4 && (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 || memcmp(s, "NULL", 4) == 0));
}

/* A value written on one line after 'key: ' or '- ' (blockyaml._scalar). */
static PyObject *scalar(Reader *r, const char *s, Py_ssize_t n) {
    char first = s[0];
    if (first == '\'') {
        if (n < 2 || s[n - 1] != '\'')
            return stray(r);
        const char *inner = s + 1;
        Py_ssize_t m = n - 2, quotes = 0;
        for (Py_ssize_t i = 0; i < m; i++) {
            if (inner[i] == '\'') {
                if (i + 1 >= m || inner[i + 1] != '\'')
                    return stray(r); /* a quote not doubled: over several lines, or text after it */
                quotes++;
                i++;
            }
        }
        if (quotes == 0)
            return PyUnicode_DecodeUTF8(inner, m, NULL);
        char *copy = PyMem_Malloc(m);
        if (copy == NULL)
            return PyErr_NoMemory();
        Py_ssize_t k = 0;
        for (Py_ssize_t i = 0; i < m; i++) {
            copy[k++] = inner[i];
            if (inner[i] == '\'')
                i++;
        }
        PyObject *text = PyUnicode_DecodeUTF8(copy, k, NULL);
        PyMem_Free(copy);
        return text;
    }
    if (first == '"') {
        if (n < 2 || s[n - 1] != '"')
            return stray(r);
        for (Py_ssize_t i = 1; i < n - 1; i++)
            if (s[i] == '"' || s[i] == '\\')
                return stray(r);
        return PyUnicode_DecodeUTF8(s + 1, n - 2, NULL);
    }
    if (indicator(first)) {
        if (n == 2 && first == '[' && s[1] == ']')
            return PyList_New(0);
        if (n == 2 && first == '{' && s[1] == '}')
            return new_fields(r);
        return stray(r);
    }
    if (s[n - 1] == ':' || s[n - 1] == ' ')
        return stray(r); /* a second key, or trailing spaces (libyaml drops them) */
    for (Py_ssize_t i = 0; i + 1 < n; i++)
        if (s[i] == ':' && s[i + 1] == ' ')
            return stray(r);
    if (is_null(s, n))
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, n, NULL);
}

/* A '>' or '|' block's text under a key at `column` (blockyaml._block): equally indented
 * lines, none blank or ending in a space. *at moves past them. */
static PyObject *block(Reader *r, Py_ssize_t *at, Py_ssize_t column, char joint, int end) {
    if (*at >= r->count)
        return stray(r);
    const Line *first = &r->lines[*at];
    Py_ssize_t indent = 0;
    while (indent < first->n && first->s[indent] == ' ')
        indent++;
    if (indent <= column)
        return stray(r); /* an empty block */
    Py_ssize_t start = *at, size = 0;
    while (*at < r->count) {
        const Line *line = &r->lines[*at];
        Py_ssize_t i = 0;
        while (i < indent && i < line->n && line->s[i] == ' ')
            i++;
        if (i < indent)
            break;
        if (line->n == indent || line->s[indent] == ' ' || line->s[line->n - 1] == ' ')
            return stray(r); /* more indented lines keep their breaks, trailing spaces their own rules */
        size += line->n - indent + 1;
        (*at)++;
    }
    /* Blank lines before, inside or after a block are the block's, by rules left to libyaml. */
    if (r->blanks &&
        (*at == r->count || r->lines[*at].number - r->lines[start - 1].number != *at - start + 1))
        return stray(r);
    char *buffer = PyMem_Malloc(size);
    if (buffer == NULL)
        return PyErr_NoMemory();
    Py_ssize_t k = 0;
    for (Py_ssize_t a = start; a < *at; a++) {
        const Line *line = &r->lines[a];
        if (a > start)
            buffer[k++] = joint;
        memcpy(buffer + k, line->s + indent, line->n - indent);
        k += line->n - indent;
    }
    if (end)
        buffer[k++] = '\n';
    PyObject *text = PyUnicode_DecodeUTF8(buffer, k, NULL);
    PyMem_Free(buffer);
    return text;
}

/* Sets fields[key] = value, with the key's line and spelling. */
static int set_field(PyObject *fields, PyObject *key, PyObject *value, long long line, PyObject *name) {
    if (PyDict_SetItem(fields, key, value) < 0)
        return -1;
    PyObject *lines = PyObject_GetAttr(fields, LINES);
    if (lines == NULL)
        return -1;
    PyObject *number = PyLong_FromLongLong(line);
    int failed = number == NULL || PyDict_SetItem(lines, key, number) < 0;
    Py_XDECREF(number);
    Py_DECREF(lines);
    if (failed)
        return -1;
    PyObject *names = PyObject_GetAttr(fields, NAMES);
    if (names == NULL)
        return -1;
    failed = PyDict_SetItem(names, key, name) < 0;
    Py_DECREF(names);
    return failed ? -1 : 0;
}

/* The open mapping or sequence a line at `column` belongs to once the deeper ones close
 * (blockyaml._container); NULL when the line fits none. */
static PyObject *container_of(Py_ssize_t *columns, PyObject **open, int *depth, Py_ssize_t column, int dash) {
    if (*depth > DEPTH)
        return NULL;
    while (columns[*depth - 1] > column)
        (*depth)--;
    if (columns[*depth - 1] != column)
        return NULL;
    if (PyList_CheckExact(open[*depth - 1]) && !dash) {
        if (*depth < 2 || columns[*depth - 2] != column)
            return NULL;
        (*depth)--; /* the end of a sequence at its key's column */
    }
    return open[*depth - 1];
}

/* blockyaml._read: the lines, none blank, as nested mappings and lists. */
static PyObject *read_lines(Reader *r) {
    PyObject *root = new_fields(r);
    if (root == NULL)
        return NULL;
    Py_ssize_t columns[STACK];
    PyObject *open[STACK]; /* borrowed: root owns them all */
    int depth = 1;
    columns[0] = 0;
    open[0] = root;
    PyObject *pending = NULL, *pending_key = NULL; /* a 'key:' whose value is on the next lines */
    Py_ssize_t pending_column = 0;
    Py_ssize_t at = 0;
    while (at < r->count) {
        Parts p;
        split(&r->lines[at], &p);
        Py_ssize_t column = p.indent;
        if (pending != NULL) {
            PyObject *fields = pending, *key = pending_key;
            pending = pending_key = NULL;
            if (column > pending_column || (column == pending_column && p.dash)) {
                PyObject *opened = p.dash ? PyList_New(0) : new_fields(r);
                int failed = opened == NULL || PyDict_SetItem(fields, key, opened) < 0;
                Py_XDECREF(opened);
                Py_DECREF(key);
                if (failed)
                    goto fail;
                if (depth >= STACK)
                    goto out;
                columns[depth] = column;
                open[depth++] = opened;
            } else {
                Py_DECREF(key);
            }
        }
        PyObject *container;
        if (columns[depth - 1] == column && (p.dash || !PyList_CheckExact(open[depth - 1])) && depth <= DEPTH)
            container = open[depth - 1];
        else if ((container = container_of(columns, open, &depth, column, p.dash)) == NULL)
            goto out;
        PyObject *fields;
        if (PyList_CheckExact(container)) {
            if (p.key == NULL) {
                if (p.value_n == 0 || p.value[0] == ' ' || p.value[0] == '>' || p.value[0] == '|')
                    goto out; /* '-' alone, or a block under a dash */
                PyObject *value = scalar(r, p.value, p.value_n);
                if (value == NULL)
                    goto fail;
                int failed = PyList_Append(container, value) < 0;
                Py_DECREF(value);
                if (failed)
                    goto fail;
                at++;
                continue;
            }
            fields = new_fields(r); /* '- key: value' opens a mapping */
            if (fields == NULL)
                goto fail;
            int failed = PyList_Append(container, fields) < 0;
            Py_DECREF(fields);
            if (failed)
                goto fail;
            column += 2;
            if (depth >= STACK)
                goto out;
            columns[depth] = column;
            open[depth++] = fields;
        } else if (p.dash || p.key == NULL) {
            goto out; /* a '- ' where a key belongs, a quoted or odd key, no ': ', only spaces */
        } else {
            fields = container;
        }
        long long line_number = (long long)r->lines[at].number + r->first_line;
        at++;
        PyObject *name, *folded;
        if (key_strings(p.key, p.key_n, &name, &folded) < 0)
            goto fail;
        int repeated = PyDict_Contains(fields, folded);
        if (repeated != 0) {
            Py_DECREF(name);
            Py_DECREF(folded);
            if (repeated < 0)
                goto fail;
            goto out; /* libyaml's path says which key repeats which */
        }
        PyObject *value;
        const char *v = p.value;
        Py_ssize_t n = p.value_n;
        if (n == 0) { /* None, unless lines indented under it follow */
            value = Py_NewRef(Py_None);
            pending = fields;
            pending_key = Py_NewRef(folded);
            pending_column = column;
        } else if ((n == 1 || (n == 2 && v[1] == '-')) && (v[0] == '>' || v[0] == '|')) {
            value = block(r, &at, column, v[0] == '>' ? ' ' : '\n', n == 1);
        } else {
            value = scalar(r, v, n);
        }
        if (value == NULL) {
            Py_DECREF(name);
            Py_DECREF(folded);
            goto fail;
        }
        int failed = set_field(fields, folded, value, line_number, name) < 0;
        Py_DECREF(name);
        Py_DECREF(value);
        Py_DECREF(folded);
        if (failed)
            goto fail;
    }
    Py_XDECREF(pending_key);
    return root;
out:
    r->stray = 1;
fail:
    Py_XDECREF(pending_key);
    Py_DECREF(root);
    return NULL;
}

static PyObject *read_text(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyLong_Check(args[1]) || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "read(text: str, first_line: int, fields_type: type)");
        return NULL;
    }
    /* The reader keeps borrowed pointers into the tree it builds: the mappings must be plain
     * dicts whose attributes run no Python code that could change the tree. */
    PyTypeObject *type = (PyTypeObject *)args[2];
    if (!PyType_IsSubtype(type, &PyDict_Type) || type->tp_new != PyDict_Type.tp_new ||
        type->tp_getattro != PyObject_GenericGetAttr || type->tp_setattro != PyObject_GenericSetAttr) {
        PyErr_SetString(PyExc_TypeError, "fields_type must be a dict subclass with plain attributes");
        return NULL;
    }
    int overflow;
    long long first_line = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (first_line == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || first_line > (1LL << 62) || first_line < -(1LL << 62)) {
        PyErr_SetString(PyExc_OverflowError, "first_line is out of range");
        return NULL;
    }
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(args[0], &size);
    if (text == NULL) { /* a lone surrogate: libyaml says what is wrong */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (size == 0 || text[size - 1] != '\n')
        Py_RETURN_NONE;
    Py_ssize_t breaks = 0;
    for (const char *c = text; (c = memchr(c, '\n', text + size - c)) != NULL; c++)
        breaks++;
    Line *lines = PyMem_Malloc(sizeof(Line) * (size_t)breaks);
    if (lines == NULL)
        return PyErr_NoMemory();
    Reader r = {lines, 0, 0, first_line, args[2], 0};
    const char *start = text;
    for (Py_ssize_t number = 0; number < breaks; number++) {
        const char *end = memchr(start, '\n', text + size - start);
        if (end > start)
            lines[r.count++] = (Line){start, end - start, number};
        else
            r.blanks = 1;
        start = end + 1;
    }
    PyObject *result = r.count ? read_lines(&r) : NULL;
    PyMem_Free(lines);
    if (result == NULL && !PyErr_Occurred())
        Py_RETURN_NONE; /* outside the subset, or no lines at all */
    return result;
}

static PyMethodDef methods[] = {
    {"read", (PyCFunction)(void (*)(void))read_text, METH_FASTCALL,
     "read(text, first_line, fields_type): the block YAML mapping in `text`, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_blockyaml", NULL, -1, methods};

PyMODINIT_FUNC PyInit__blockyaml(void) {
    LINES = PyUnicode_InternFromString("lines");
    NAMES = PyUnicode_InternFromString("names");
    EMPTY = PyTuple_New(0);
    if (LINES == NULL || NAMES == NULL || EMPTY == NULL) {
        Py_CLEAR(LINES);
        Py_CLEAR(NAMES);
        Py_CLEAR(EMPTY);
        return NULL;
    }
    return PyModule_Create(&module);
}
