import fp from 'fastify-plugin';
import type { FileStore } from '../files/file-store.js';
import type { MailTransport } from '../mail.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Outgoing mail (services/api/mail.ts): queued in the transaction of the change that sends it. */
    mail: MailTransport;
    /** Uploaded files' bytes (services/api/files/file-store.ts): local disk or S3-compatible. */
    files: FileStore;
  }
}

/** What the API hands data to outside the database: the mail transport and the file store. */
export const outputsPlugin = fp<{ mail: MailTransport; files: FileStore }>(
  async (app, { mail, files }) => {
    app.decorate('mail', mail);
    app.decorate('files', files);
    app.addHook('onClose', async () => files.close());
  },
  { name: 'fieldops-outputs' },
);
