import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The `User-Agent` a {@link Browser} sends. */
export const BROWSER_AGENT = 'TesseraTestBrowser/1.0';

/** A response as a test sees it. */
export interface BrowserResponse {
  status: number;
  location: string | null;
  setCookies: string[];
  /** Every response header (Set-Cookie lines are in `setCookies`). */
  headers: Headers;
  text: string;
}

/**
 * A minimal cookie-keeping HTTP client over real sockets: it stores what Set-Cookie says
 * (including deletions) and sends it back, like a browser would, and never follows redirects.
 */
export class Browser {
  readonly base: string;
  readonly jar = new Map<string, string>();
  /** Headers sent with every request (a `User-Agent` of its own, an `Authorization`...). */
  readonly headers: Record<string, string> = { 'user-agent': BROWSER_AGENT };

  constructor(base: string) {
    this.base = base;
  }

  /** The Cookie header this browser would send. */
  get cookieHeader(): string {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  async request(method: string, path: string, form?: Record<string, string>): Promise<BrowserResponse> {
    const headers: Record<string, string> = { ...this.headers };
    if (this.jar.size > 0) headers.cookie = this.cookieHeader;
    let body: string | undefined;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(this.base + path, { method, headers, body, redirect: 'manual' });
    const setCookies = response.headers.getSetCookie();
    for (const line of setCookies) this.#remember(line);
    return {
      status: response.status,
      location: response.headers.get('location'),
      setCookies,
      headers: response.headers,
      text: await response.text(),
    };
  }

  get(path: string): Promise<BrowserResponse> {
    return this.request('GET', path);
  }

  post(path: string, form?: Record<string, string>): Promise<BrowserResponse> {
    return this.request('POST', path, form ?? {});
  }

  #remember(line: string): void {
    const [pair = '', ...attributes] = line.split(';');
    const at = pair.indexOf('=');
    const name = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    const expired = attributes.some((a) => {
      const [key = '', val = ''] = a.split('=').map((s) => s.trim());
      return (
        (key.toLowerCase() === 'max-age' && Number(val) <= 0) ||
        (key.toLowerCase() === 'expires' && Date.parse(val) <= Date.now())
      );
    });
    if (expired) this.jar.delete(name);
    else this.jar.set(name, value);
  }
}

/** Listens on a free loopback port and returns the base URL. */
export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes a server, ending idle keep-alive connections. */
export async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
