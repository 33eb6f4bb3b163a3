/*
 * keyring.c
 *	  The master key ring, read from the file named by actloom.keyring_file.
 *
 * File format.  A text file of at most 64 kB; "#" starts a comment that runs
 * to the end of the line; blank lines are ignored; every other line is one of
 *
 *		key <id> <64 hexadecimal digits>	a 256-bit master key
 *		active <id>							the key that wraps new data keys
 *
 * where <id> is a decimal integer from 1 to 2147483647.  Ids are unique, at
 * most 100 keys, and exactly one "active" line naming a key of the file.
 *
 * Trust.  The file must be a regular file, named by an absolute path outside
 * the data directory (base backups and replicas copy the data directory; the
 * master keys must not travel with it), owned by the server's OS user or by
 * root, and without any access for group or others.  These are the rules
 * PostgreSQL applies to a TLS private key, made stricter.
 *
 * Lifetime.  The ring is read on first use, not at server start: a bad file
 * must not keep the server from starting, it must make the functions that
 * need a key fail with a clear error (SQLSTATE F0000).  The first use in each
 * transaction compares the file's identity and modification time with what
 * was loaded, every use compares the setting with the path that was loaded,
 * and the file is read again when either changed, so an operator who adds a
 * key needs no restart, and one transaction sees one ring.  A file that
 * became bad empties the ring.  Users of keys derived from the ring (the
 * cache of unwrapped data keys in seal.c) call KeyringCheck() on every use
 * and drop what they derived when its generation changes.  The ring lives in TopMemoryContext; key
 * material is wiped before it is freed, and the read buffer is wiped after
 * parsing.  No key material ever reaches a message, a table or a log.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/memutils.h"

#include "actloom.h"

#define KEYRING_MAX_BYTES	65536
#define KEYRING_MAX_KEYS	100

typedef struct Keyring
{
	char	   *path;			/* the setting it was loaded for */
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec mtime;
	struct timespec ctime;
	int			nkeys;
	int32		active;
	MasterKey	keys[KEYRING_MAX_KEYS];
} Keyring;

static Keyring *Ring = NULL;

/* The transaction that last checked the file. */
static LocalTransactionId CheckedLxid = InvalidLocalTransactionId;

/* Counts loads, so that users of the ring can tell when it changed. */
static uint64 RingGeneration = 0;

/* Wipe and free the loaded ring. */
static void
KeyringDrop(void)
{
	CryptoForgetKeys();
	if (Ring == NULL)
		return;
	if (Ring->path)
		pfree(Ring->path);
	CryptoWipe(Ring, sizeof(Keyring));
	pfree(Ring);
	Ring = NULL;
}

/* Whether the loaded ring still describes the file at path. */
static bool
KeyringCurrent(const char *path)
{
	struct stat st;

	if (Ring == NULL || strcmp(Ring->path, path) != 0)
		return false;
	if (stat(path, &st) != 0)
		return false;
	return st.st_dev == Ring->dev && st.st_ino == Ring->ino &&
		st.st_size == Ring->size &&
		st.st_mtim.tv_sec == Ring->mtime.tv_sec &&
		st.st_mtim.tv_nsec == Ring->mtime.tv_nsec &&
		st.st_ctim.tv_sec == Ring->ctime.tv_sec &&
		st.st_ctim.tv_nsec == Ring->ctime.tv_nsec;
}

/* Raise the error for a malformed file; never shows the line's content. */
static void
pg_attribute_noreturn()
KeyringMalformed(const char *path, int line, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("key ring file \"%s\" is malformed", path),
			 line > 0 ? errdetail("Line %d: %s", line, why) : errdetail("%s", why),
			 errhint("Each line is \"key <id> <64 hexadecimal digits>\" or \"active <id>\".")));
	pg_unreachable();
}

/* Parse a key id: a decimal integer from 1 to 2147483647. */
static bool
KeyringParseId(const char *s, int32 *id)
{
	int64		v = 0;

	if (*s < '1' || *s > '9')
		return false;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
		if (v > PG_INT32_MAX)
			return false;
	}
	*id = (int32) v;
	return true;
}

static int
KeyringHexDigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode 64 hex digits into a 32-byte key; false if s is anything else. */
static bool
KeyringParseKey(const char *s, uint8 *key)
{
	int			i;

	if (strlen(s) != 2 * CRYPTO_KEY_LEN)
		return false;
	for (i = 0; i < CRYPTO_KEY_LEN; i++)
	{
		int			hi = KeyringHexDigit(s[2 * i]);
		int			lo = KeyringHexDigit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		key[i] = (uint8) (hi << 4 | lo);
	}
	return true;
}

/*
 * Parse the file's text (NUL-terminated, modified in place) into ring.
 * Raises on the first problem, naming the line.
 */
static void
KeyringParse(const char *path, char *text, Keyring *ring)
{
	char	   *line = text;
	int			lineno = 0;
	bool		has_active = false;
	int			i;

	while (line && *line)
	{
		char	   *next = strchr(line, '\n');
		char	   *hash;
		char	   *words[4];
		int			nwords = 0;
		char	   *tok;
		char	   *save;

		lineno++;
		if (next)
			*next++ = '\0';
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';

		for (tok = strtok_r(line, " \t\r", &save); tok && nwords < 4;
			 tok = strtok_r(NULL, " \t\r", &save))
			words[nwords++] = tok;

		if (nwords == 0)
		{
			line = next;
			continue;
		}
		if (strcmp(words[0], "key") == 0)
		{
			int32		id;

			if (nwords != 3)
				KeyringMalformed(path, lineno, "A key line has a key id and the key.");
			if (!KeyringParseId(words[1], &id))
				KeyringMalformed(path, lineno, "A key id is an integer from 1 to 2147483647.");
			for (i = 0; i < ring->nkeys; i++)
				if (ring->keys[i].id == id)
					KeyringMalformed(path, lineno, "The key id is used twice.");
			if (ring->nkeys >= KEYRING_MAX_KEYS)
				KeyringMalformed(path, lineno, "A key ring holds at most 100 keys.");
			if (!KeyringParseKey(words[2], ring->keys[ring->nkeys].key))
				KeyringMalformed(path, lineno, "A key is 64 hexadecimal digits (256 bits).");
			ring->keys[ring->nkeys].id = id;
			ring->nkeys++;
		}
		else if (strcmp(words[0], "active") == 0)
		{
			if (nwords != 2)
				KeyringMalformed(path, lineno, "An active line names one key id.");
			if (has_active)
				KeyringMalformed(path, lineno, "Only one key can be active.");
			if (!KeyringParseId(words[1], &ring->active))
				KeyringMalformed(path, lineno, "A key id is an integer from 1 to 2147483647.");
			has_active = true;
		}
		else
			KeyringMalformed(path, lineno, "A line starts with \"key\" or \"active\".");
		line = next;
	}

	if (ring->nkeys == 0)
		KeyringMalformed(path, 0, "The file holds no key.");
	if (!has_active)
		KeyringMalformed(path, 0, "No key is marked active.");
	for (i = 0; i < ring->nkeys; i++)
		if (ring->keys[i].id == ring->active)
			return;
	KeyringMalformed(path, 0, "The active key id is not a key of the file.");
}

/* Whether path is dir itself or inside it; both are absolute, resolved. */
static bool
KeyringPathWithin(const char *path, const char *dir)
{
	size_t		n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/*
 * Read, check and parse the file at path into a new ring.  Raises F0000 on
 * any problem, leaving no ring loaded.
 */
static void
KeyringLoad(const char *path)
{
	char	   *resolved;
	char	   *datadir;
	struct stat st;
	int			fd;
	char	   *text;
	ssize_t		got;
	Keyring    *ring;

	KeyringDrop();

	if (path[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("no key ring is configured"),
				 errhint("Set actloom.keyring_file to the path of the key ring file.")));
	if (!is_absolute_path(path))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key ring file \"%s\" is not an absolute path", path)));

	resolved = realpath(path, NULL);
	if (resolved == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not open key ring file \"%s\": %m", path)));
	datadir = realpath(DataDir, NULL);
	if (datadir && KeyringPathWithin(resolved, datadir))
	{
		free(resolved);
		free(datadir);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key ring file \"%s\" is inside the data directory", path),
				 errdetail("Backups and replicas copy the data directory; the master keys must not travel with it.")));
	}
	free(resolved);
	free(datadir);

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not open key ring file \"%s\": %m", path)));
	if (fstat(fd, &st) != 0)
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not stat key ring file \"%s\": %m", path)));
	}
	if (!S_ISREG(st.st_mode))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key ring file \"%s\" is not a regular file", path)));
	}
	if (st.st_uid != geteuid() && st.st_uid != 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key ring file \"%s\" must be owned by the database user or root", path)));
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key ring file \"%s\" has group or world access", path),
				 errdetail("The file must not be accessible by group or others."),
				 errhint("chmod 0600 \"%s\"", path)));
	}
	if (st.st_size > KEYRING_MAX_BYTES)
	{
		close(fd);
		KeyringMalformed(path, 0, "The file is larger than 64 kB.");
	}

	text = MemoryContextAllocZero(TopMemoryContext, KEYRING_MAX_BYTES + 1);
	got = read(fd, text, KEYRING_MAX_BYTES + 1);
	if (got < 0)
	{
		int			save_errno = errno;

		close(fd);
		pfree(text);
		errno = save_errno;
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not read key ring file \"%s\": %m", path)));
	}
	close(fd);

	ring = MemoryContextAllocZero(TopMemoryContext, sizeof(Keyring));
	PG_TRY();
	{
		if (got > KEYRING_MAX_BYTES)
			KeyringMalformed(path, 0, "The file is larger than 64 kB.");
		if (memchr(text, '\0', got) != NULL)
			KeyringMalformed(path, 0, "The file contains a NUL byte.");
		KeyringParse(path, text, ring);
	}
	PG_CATCH();
	{
		CryptoWipe(text, KEYRING_MAX_BYTES + 1);
		pfree(text);
		CryptoWipe(ring, sizeof(Keyring));
		pfree(ring);
		PG_RE_THROW();
	}
	PG_END_TRY();
	CryptoWipe(text, KEYRING_MAX_BYTES + 1);
	pfree(text);

	ring->path = MemoryContextStrdup(TopMemoryContext, path);
	ring->dev = st.st_dev;
	ring->ino = st.st_ino;
	ring->size = st.st_size;
	ring->mtime = st.st_mtim;
	ring->ctime = st.st_ctim;
	Ring = ring;
	RingGeneration++;
}

/* The ring for the current setting, loaded or reloaded as needed. */
static Keyring *
KeyringEnsure(void)
{
	const char *path = ActloomKeyringFile ? ActloomKeyringFile : "";

	if (!KeyringCurrent(path))
		KeyringLoad(path);
	return Ring;
}

/*
 * KeyringCheck makes sure the ring of the current setting is loaded and, once
 * per transaction, that the file did not change; returns a number that
 * changes whenever the ring was (re)loaded.  Raises F0000 when the file
 * cannot be used.
 */
uint64
KeyringCheck(void)
{
	const char *path = ActloomKeyringFile ? ActloomKeyringFile : "";

	if (Ring == NULL || CheckedLxid != MyProc->lxid || strcmp(Ring->path, path) != 0)
	{
		KeyringEnsure();
		CheckedLxid = MyProc->lxid;
	}
	return RingGeneration;
}

/*
 * KeyringGet returns the master key with this id, or raises F0000 when the
 * ring cannot be read or does not hold it.
 */
const MasterKey *
KeyringGet(int32 id)
{
	Keyring    *ring = KeyringEnsure();
	int			i;

	for (i = 0; i < ring->nkeys; i++)
		if (ring->keys[i].id == id)
			return &ring->keys[i];
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("master key %d is not in the key ring", id),
			 errhint("Add the key back to the key ring file, or rotate to a key that is there.")));
	pg_unreachable();
}

/*
 * KeyringActive returns the active master key, or raises F0000 when the ring
 * cannot be read.
 */
const MasterKey *
KeyringActive(void)
{
	return KeyringGet(KeyringEnsure()->active);
}
