// jmap-jam (npm), a JMAP client nobody here wrote, against a running jmapcore server.
//
// Environment:
//   JAM_SESSION_URL      the Session URL (https://127.0.0.1:PORT/.well-known/jmap)
//   JAM_BEARER_TOKEN     a bearer token (jam authenticates with nothing else)
//   NODE_EXTRA_CA_CERTS  the test certificate, so that Node's fetch trusts the server
//   JAM_LABEL            optional: a word put into the names of what is created
//
// Everything goes through jam's own API (JamClient, api.<Type>.<method>, request,
// requestMany with $ref, uploadBlob, downloadBlob).  Prints one JSON object on stdout;
// exits 1 with {"error": ...} on stderr when jam throws something unexpected.

import JamClient from "jmap-jam";

const sessionUrl = process.env.JAM_SESSION_URL;
const bearerToken = process.env.JAM_BEARER_TOKEN;
const label = process.env.JAM_LABEL ?? "jam";
if (!sessionUrl || !bearerToken) {
  console.error("JAM_SESSION_URL and JAM_BEARER_TOKEN are required");
  process.exit(2);
}
if (sessionUrl.startsWith("https:") && !process.env.NODE_EXTRA_CA_CERTS) {
  console.error("NODE_EXTRA_CA_CERTS must name the server's certificate");
  process.exit(2);
}

// What jam throws: a method error object, an array of them (requestMany), problem
// details (a non-2xx JSON answer), a text body, or an Error.
async function thrown(promise) {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) {
      return { error: String(error), cause: error.cause ?? null };
    }
    return error;
  }
  return null;
}

const MESSAGE = [
  "From: Jam Sender <jam@example.com>",
  "To: alice@example.com",
  `Subject: Sent through jam (${label})`,
  "Date: Sun, 22 Nov 2026 10:00:00 +0000",
  `Message-ID: <jam-${label}@example.com>`,
  "MIME-Version: 1.0",
  "Content-Type: text/plain; charset=utf-8",
  "",
  "Hello from jmap-jam, grüße.",
  "",
].join("\r\n");

async function main() {
  const summary = {};
  const jam = new JamClient({ sessionUrl, bearerToken });

  // The Session: jam fetches it in its constructor and keeps the promise.
  const session = await jam.session;
  const accountId = await jam.getPrimaryAccount();
  summary.session = {
    username: session.username,
    apiUrl: session.apiUrl,
    uploadUrl: session.uploadUrl,
    downloadUrl: session.downloadUrl,
    capabilities: Object.keys(session.capabilities ?? {}),
    primaryAccounts: session.primaryAccounts,
    state: session.state,
    accountId,
  };

  // Core/echo: one call through the api proxy.
  const greeting = { hello: ["world", 1, null, { nested: true }], text: "grüße" };
  const [echoed, echoMeta] = await jam.api.Core.echo(greeting);
  summary.echo = { arguments: echoed, sessionState: echoMeta.sessionState };

  // Mailbox/get, all of them.
  const [mailboxes] = await jam.api.Mailbox.get({ accountId, ids: null });
  summary.mailboxGet = {
    state: mailboxes.state,
    list: mailboxes.list.map((m) => ({ id: m.id, name: m.name, role: m.role })),
    notFound: mailboxes.notFound,
  };

  // Mailbox/set create, with the request's createdIds (jam's `createdIds` option).
  const mailboxName = `Made by jam ${label}`;
  const [set, setMeta] = await jam.api.Mailbox.set(
    { accountId, ifInState: mailboxes.state, create: { box: { name: mailboxName, parentId: null } } },
    { createdIds: {} },
  );
  const mailboxId = set.created?.box?.id ?? null;
  summary.mailboxSet = {
    oldState: set.oldState,
    newState: set.newState,
    created: set.created,
    notCreated: set.notCreated,
    createdIds: setMeta.createdIds ?? null,
    mailboxId,
    name: mailboxName,
  };

  // A message into that mailbox: jam's uploadBlob, then Email/import.
  const uploaded = await jam.uploadBlob(accountId, new Blob([MESSAGE], { type: "message/rfc822" }));
  const [imported] = await jam.api.Email.import({
    accountId,
    emails: { mail: { blobId: uploaded.blobId, mailboxIds: { [mailboxId]: true }, keywords: { $seen: true } } },
  });
  const emailId = imported.created?.mail?.id ?? null;
  summary.upload = uploaded;
  summary.import = { created: imported.created, notCreated: imported.notCreated, emailId };

  // Email/query + Email/get (+ Thread/get) in one request, tied by jam's $ref.
  const [listed, listedMeta] = await jam.requestMany((t) => {
    const query = t.Email.query({
      accountId,
      filter: { inMailbox: mailboxId },
      sort: [{ property: "receivedAt", isAscending: false }],
      calculateTotal: true,
    });
    const emails = t.Email.get({
      accountId,
      ids: query.$ref("/ids"),
      properties: ["threadId", "mailboxIds", "keywords", "from", "subject", "preview", "blobId", "size"],
    });
    const threads = t.Thread.get({ accountId, ids: emails.$ref("/list/*/threadId") });
    return { query, emails, threads };
  });
  summary.queryGet = {
    query: listed.query,
    emails: listed.emails,
    threads: listed.threads,
    sessionState: listedMeta.sessionState,
    // jam sent no createdIds here, so the response must not have any.
    createdIdsInResponse: listedMeta.createdIds !== undefined,
  };

  // A batch: echo, a parent and a child mailbox (creation id reference "#parent"), a
  // Mailbox/get whose ids come from the echo by $ref, and Mailbox/changes since the
  // state the first Mailbox/get saw.
  const [batch, batchMeta] = await jam.requestMany((t) => {
    const echo = t.Core.echo({ ids: [mailboxId] });
    const create = t.Mailbox.set({
      accountId,
      create: {
        parent: { name: `Jam parent ${label}` },
        child: { name: `Jam child ${label}`, parentId: "#parent" },
      },
    });
    const fetched = t.Mailbox.get({ accountId, ids: echo.$ref("/ids"), properties: ["name", "totalEmails", "unreadEmails"] });
    const changes = t.Mailbox.changes({ accountId, sinceState: mailboxes.state });
    return { echo, create, fetched, changes };
  }, { createdIds: {} });
  summary.batch = { responses: batch, createdIds: batchMeta.createdIds ?? null };

  // downloadBlob fills jam's {accountId} {blobId} {type} {name} into downloadUrl.
  const downloaded = await jam.downloadBlob({
    accountId,
    blobId: uploaded.blobId,
    mimeType: "message/rfc822",
    fileName: "jam message.eml",
  });
  const body = await downloaded.text();
  summary.download = {
    status: downloaded.status,
    url: downloaded.url,
    contentType: downloaded.headers.get("content-type"),
    contentDisposition: downloaded.headers.get("content-disposition"),
    sameBytes: body === MESSAGE,
  };

  // How failures reach jam: a method error (thrown as the error object), errors in a
  // batch (thrown as an array), and a request-level problem (thrown as its JSON).
  // jam adds `using` entries without removing duplicates: [core, mail, mail].
  const [again, againMeta] = await jam.api.Mailbox.get(
    { accountId, ids: [mailboxId], properties: ["name"] },
    { using: ["urn:ietf:params:jmap:mail"] },
  );
  summary.duplicateUsing = { list: again.list, sessionState: againMeta.sessionState };

  // jam does not look at the Session's HTTP status: a wrong token leaves the
  // server's answer in place of the Session.
  const intruder = new JamClient({ sessionUrl, bearerToken: `${bearerToken}x` });
  summary.wrongToken = await intruder.session;

  summary.errors = {
    unknownMethod: await thrown(jam.request(["Nothing/here", {}])),
    badReference: await thrown(
      jam.requestMany((t) => {
        const echo = t.Core.echo({});
        const get = t.Mailbox.get({ accountId, ids: echo.$ref("/missing") });
        return { echo, get };
      }),
    ),
    unknownCapability: await thrown(jam.api.Core.echo({}, { using: ["urn:example:jam:nothing"] })),
    notFoundBlob: await thrown(
      jam.downloadBlob({ accountId, blobId: "Gnothere", mimeType: "text/plain", fileName: "x.txt" }),
    ),
  };
  return summary;
}

try {
  const summary = await main();
  process.stdout.write(`${JSON.stringify(summary, null, 1)}\n`);
} catch (error) {
  const detail = error instanceof Error ? { error: String(error), stack: error.stack, cause: String(error.cause) } : { error };
  process.stderr.write(`${JSON.stringify(detail)}\n`);
  process.exit(1);
}
