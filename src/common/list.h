/* Intrusive doubly-linked list with a tail, for FIFO queues and for lists
 * whose members leave from the middle (sessions, idle users, clients).
 * The node lives in the owner's struct; the list owns nothing. */
#ifndef LOFT_COMMON_LIST_H
#define LOFT_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *prev, *next;
};

struct list {
	struct list_node *head, *tail;
	size_t count;
};

#define LIST_INIT { NULL, NULL, 0 }

static inline void list_init(struct list *l)
{
	l->head = l->tail = NULL;
	l->count = 0;
}

static inline bool list_is_empty(const struct list *l)
{
	return l->head == NULL;
}

static inline void list_append(struct list *l, struct list_node *n)
{
	n->next = NULL;
	n->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
	l->count++;
}

static inline void list_unlink(struct list *l, struct list_node *n)
{
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		l->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	else
		l->tail = n->prev;
	n->prev = n->next = NULL;
	l->count--;
}

/* Empties the list and returns its former head (the chain stays linked
 * through next), e.g. to run a queue outside a lock. */
static inline struct list_node *list_take_all(struct list *l)
{
	struct list_node *head = l->head;
	list_init(l);
	return head;
}

static inline struct list_node *list_pop_head(struct list *l)
{
	struct list_node *n = l->head;
	if (n != NULL)
		list_unlink(l, n);
	return n;
}

#endif
