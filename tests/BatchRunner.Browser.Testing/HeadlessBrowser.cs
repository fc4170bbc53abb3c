using Microsoft.Playwright;

namespace BatchRunner.Browser.Testing;

/// <summary>
/// Debian's chromium, headless, driven by Playwright for .NET: one browser for a test class, a fresh context (cookies,
/// storage, downloads) per page. Playwright's own browser download is never used: the executable is the Debian
/// package's (tests/browser/install.sh installs it).
/// </summary>
public sealed class HeadlessBrowser : Xunit.IAsyncLifetime
{
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    /// <summary>The Debian package's browser binary itself (/usr/bin/chromium is a shell script that starts it).</summary>
    public static string Executable =>
        new[] { "/usr/lib/chromium/chromium", "/usr/bin/chromium" }.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("Debian's chromium is not installed: run tests/browser/install.sh");

    /// <summary>Where screenshots and downloads of the browser tests are kept after the run.</summary>
    public static string Artifacts { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName;

    public async Task InitializeAsync()
    {
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Executable,
            Headless = true,
            // The tests run as root in a machine without a user namespace sandbox to give chromium.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
    }

    public async Task<IPage> NewPageAsync()
    {
        var context = await _browser!.NewContextAsync(new BrowserNewContextOptions { AcceptDownloads = true, ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        return await context.NewPageAsync();
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.CloseAsync();
        }

        _playwright?.Dispose();
    }
}
