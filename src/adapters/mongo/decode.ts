/**
 * Documents read from MongoDB are decoded, not cast: a stored `null` or a wrong type (a document
 * written by hand, by an older version, by another program) becomes one clear error naming the
 * collection, the document and the field, instead of an `undefined` that crashes far away.
 * Each adapter declares the schema of what it reads and calls {@link decodeDoc} on it.
 */
import { z } from 'zod';
import { ErrorCodes, MailwheelError } from '../../errors.js';

/** A stored document that does not have the shape its adapter reads. */
export class MalformedDocumentError extends MailwheelError {
  readonly collection: string;
  readonly docId: string;
  readonly field: string;

  constructor(collection: string, docId: string, field: string, problem: string) {
    super(ErrorCodes.DOCUMENT_INVALID, `malformed document in ${collection}: _id ${docId}: field ${field}: ${problem}`);
    this.name = 'MalformedDocumentError';
    this.collection = collection;
    this.docId = docId;
    this.field = field;
  }
}

/** Decodes `doc` with `schema`, or throws a MalformedDocumentError for its first problem. */
export function decodeDoc<S extends z.ZodType>(schema: S, collection: string, doc: unknown): z.output<S> {
  const r = schema.safeParse(doc);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue === undefined || issue.path.length === 0 ? '(document)' : issue.path.map(String).join('.');
  throw new MalformedDocumentError(collection, docIdOf(doc), field, issue?.message ?? 'invalid');
}

/** The `_id` of a raw document, as text for a message. */
export function docIdOf(doc: unknown): string {
  const id = typeof doc === 'object' && doc !== null ? (doc as { _id?: unknown })._id : undefined;
  return id === undefined ? '(none)' : JSON.stringify(id) ?? String(id);
}

/** A BSON date as the driver returns it. */
export const zDate = z.date();
