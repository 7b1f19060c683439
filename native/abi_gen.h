/* Generated from broker/abi.py by `python broker/abi.py`; do not edit. */
#ifndef WM_ABI_GEN_H
#define WM_ABI_GEN_H

#define WM_OK 0
#define WM_BADF 1
#define WM_STALE 2
#define WM_NOENT 3
#define WM_ACCES 4
#define WM_FAULT 5
#define WM_RANGE 6
#define WM_INVAL 7
#define WM_BUSY 8
#define WM_QUOTA 9
#define WM_TOOBIG 10
#define WM_CONFLICT 11
#define WM_TYPE 12
#define WM_IO 13
#define WM_ERRNO_MAX 13
#define WM_ERRNO_NAMES {"OK", "BADF", "STALE", "NOENT", "ACCES", "FAULT", "RANGE", "INVAL", "BUSY", "QUOTA", "TOOBIG", "CONFLICT", "TYPE", "IO"}

#define WM_RIGHT_READ 1
#define WM_RIGHT_WRITE 2
#define WM_RIGHTS_ALL 3

/* X(name, number of params) for every implemented function. */
#define WM_ABI_FUNCTIONS(X) \
    X(open, 4) \
    X(new, 1) \
    X(close, 1) \
    X(clone, 3) \
    X(get, 6) \
    X(set, 5) \
    X(delete, 3) \
    X(exists, 4) \
    X(len, 2) \
    X(keys, 6) \
    X(incr, 5) \
    X(version, 4) \
    X(set_if, 6) \
    X(get_many, 6) \
    X(set_many, 3) \
    X(set_map, 4) \
    X(get_map, 4) \
    X(watch_drop, 2) \

#define WM_ABI_COUNT 18

#endif
