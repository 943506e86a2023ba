/*
 * cluster/subject.h - MQTT topics and filters as NATS subjects, and the
 * queue group names of the cluster.
 *
 * A topic maps to one subject, one token per topic level, so that NATS'
 * own wildcards do MQTT's matching:
 *   topic not starting with '$'  ->  <cluster>.m.<t1>.<t2>...
 *   topic starting with '$'      ->  <cluster>.d.<t1>.<t2>...
 * The second token keeps '$' topics out of reach of filters that start
 * with a wildcard: '#' is <cluster>.m.> and '+/x' is <cluster>.m.*.x, which
 * never match <cluster>.d... [MQTT-4.7.2-1].
 *
 * A level becomes a token byte for byte, except the bytes that NATS gives
 * a meaning or that a token may not hold: '.', '*', '>', '%' (our escape),
 * every byte <= 0x20 and 0x7f are written %XX (upper-case hex). An empty
 * level is the token "%" alone, which no other level produces. So the
 * mapping is injective and subject_to_topic() inverts it exactly.
 *
 * A filter maps to one or two subjects: '+' is '*'; a trailing '#' is '>'
 * and also the parent subject, since "a/#" matches "a" [MQTT-4.7.1-2];
 * '#' alone is only <cluster>.m.> (a topic has at least one level).
 *
 * Queue groups: a node subscribes to the subjects of its plain filters
 * with its own queue group <cluster>.n.<node>, so that NATS hands it each
 * message once however many of its filters match; a shared subscription
 * $share/G/F subscribes the subjects of F with <cluster>.s.<G>.<F's
 * subject without the cluster prefix>, the same on every node. NATS
 * (nats-server's client.go splitArg(), route.go processRemoteSub()) only
 * requires a queue name to be one non-empty word without space, tab, CR or
 * LF; the token escaping gives that, and the queue name stays injective in
 * (G, F) because an escaped G holds no '.'.
 *
 * The cluster name is the first token of every subject and the prefix of
 * the JetStream stream and key-value bucket names, whose rules are the
 * strictest: 1 to SUBJECT_CLUSTER_MAX bytes of [A-Za-z0-9_-]
 * (subject_cluster_check()).
 *
 * Every function writes a NUL-terminated string (libnats takes C strings)
 * into a caller buffer of max + 1 bytes and refuses, with TERN_E_LIMIT,
 * a result longer than max: the caller derives max from the NATS server's
 * max_control_line and delivers such a topic on its own node only.
 * Nothing here allocates; everything is pure and thread-safe.
 */
#ifndef TERN_CLUSTER_SUBJECT_H
#define TERN_CLUSTER_SUBJECT_H

#include <stddef.h>

#include "tern/codec.h"
#include "tern/error.h"

/* Longest cluster name accepted by subject_cluster_check(). */
#define SUBJECT_CLUSTER_MAX 64

/* TERN_OK if cluster is a usable cluster name (1 to SUBJECT_CLUSTER_MAX
 * bytes, each a letter, digit, '_' or '-'), else TERN_E_INVALID. Every
 * function below checks its cluster argument with it. */
TERN_MUST_CHECK enum tern_err subject_cluster_check(const char *cluster);

/*
 * Writes the subject of topic name topic into out (room for max + 1 bytes,
 * NUL included) and its length without the NUL into *len. Any byte string
 * maps (an empty one is one empty level); the caller has validated the
 * topic. TERN_E_INVALID for a bad cluster name, TERN_E_LIMIT if the
 * subject is longer than max (out then holds no subject).
 */
TERN_MUST_CHECK enum tern_err subject_of_topic(const char *cluster, struct tern_bytes topic,
                                               char *out, size_t max, size_t *len);

/*
 * Writes the subjects of topic filter filter (without "$share/G/": see
 * tern_topic_filter_share()) into out and, when the filter ends in "/#",
 * the parent subject (the same without the last ".>") into parent; both
 * have room for max + 1 bytes. *n is set to the number of subjects, 1 or
 * 2 (parent is written only when 2). A '+' or '#' that is not a whole
 * level is taken literally, as the caller has validated the filter.
 * Errors as subject_of_topic().
 */
TERN_MUST_CHECK enum tern_err subject_of_filter(const char *cluster, struct tern_bytes filter,
                                                char *out, char *parent, size_t max, size_t *n);

/*
 * The inverse of subject_of_topic(): writes the topic of subject[0..len)
 * into out[0..cap) and its length into *out_len (no NUL). TERN_E_INVALID
 * if the subject is not exactly what subject_of_topic() makes for cluster
 * (another cluster, wildcards, a bad escape, a 'd' topic that does not
 * start with '$' or an 'm' one that does); TERN_E_BUFFER if out is too
 * small (a topic is never longer than its subject). For tests and tools.
 */
TERN_MUST_CHECK enum tern_err subject_to_topic(const char *cluster, const char *subject, size_t len,
                                               uint8_t *out, size_t cap, size_t *out_len);

/*
 * Writes the queue group of the shared subscription $share/group/filter,
 * <cluster>.s.<group as one token>.<subject of filter after "<cluster>.">,
 * into out (room for max + 1 bytes) and its length into *len. Every node
 * computes the same name for the same (group, filter) and different names
 * for different ones. Errors as subject_of_topic().
 */
TERN_MUST_CHECK enum tern_err subject_queue_shared(const char *cluster, struct tern_bytes group,
                                                   struct tern_bytes filter, char *out, size_t max,
                                                   size_t *len);

/*
 * Writes the queue group of node node, <cluster>.n.<node as one token>,
 * into out (room for max + 1 bytes) and its length into *len. Errors as
 * subject_of_topic().
 */
TERN_MUST_CHECK enum tern_err subject_queue_node(const char *cluster, struct tern_bytes node,
                                                 char *out, size_t max, size_t *len);

#endif
