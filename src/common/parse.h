/* The result every incremental parser in loft returns. */
#ifndef LOFT_COMMON_PARSE_H
#define LOFT_COMMON_PARSE_H

enum parse_result {
	PARSE_OK,	/* one complete unit was parsed */
	PARSE_MORE,	/* more input is needed */
	PARSE_ERROR,	/* the input is invalid; the parser says why */
};

#endif
