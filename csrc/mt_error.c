/*
 * mt_error.c - the library's error codes as text (mantis_strerror).
 */
#include "mantis.h"

const char *mantis_strerror(int code)
{
	switch (code) {
	case MANTIS_OK:
		return "success";
	case MANTIS_NOTFOUND:
		return "key not found";
	case MANTIS_EINVAL:
		return "invalid argument";
	case MANTIS_EKEY:
		return "empty key";
	case MANTIS_ETOOLARGE:
		return "key, value, batch or cost too large";
	case MANTIS_ENOMEM:
		return "out of memory";
	case MANTIS_EBADHANDLE:
		return "invalid handle (never issued, forged or of another kind)";
	case MANTIS_CLOSED:
		return "handle closed";
	case MANTIS_CONFLICT:
		return "transaction conflict: a checked key changed";
	case MANTIS_EBUFSIZE:
		return "output buffer too small";
	case MANTIS_DONE:
		return "iterator exhausted";
	default:
		return "unknown error code";
	}
}
